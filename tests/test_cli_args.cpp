// The flag parser every subcommand uses: values, defaults, toggles, repeats, "--" passthrough,
// and errors that name the flag.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/args.h"
#include "test_util.h"

namespace halo::test {
namespace {

using ::testing::HasSubstr;

ArgParser parser() {
  ArgParser p("demo", "A test command.");
  p.required("dim", "D", "embedding size")
      .option("lr", "X", "learning rate", "0.001")
      .repeated("set", "K=V", "override")
      .toggle("verbose", "talk more")
      .allow_rest("CMD...", "command to run");
  return p;
}

TEST(ArgParser, ParsesValuesDefaultsTogglesAndRest) {
  ArgParser p = parser();
  ASSERT_TRUE(
      p.parse({"--dim", "64", "--set=a.b=1", "--set", "c=2", "--verbose", "--", "train", "--x"}));
  EXPECT_EQ(p.integer("dim"), 64);
  EXPECT_DOUBLE_EQ(p.real("lr"), 0.001);
  EXPECT_EQ(p.all("set"), (std::vector<std::string>{"a.b=1", "c=2"}));
  EXPECT_TRUE(p.on("verbose"));
  EXPECT_EQ(p.rest(), (std::vector<std::string>{"train", "--x"}));
}

TEST(ArgParser, HelpStopsParsing) {
  ArgParser p = parser();
  testing::internal::CaptureStdout();
  EXPECT_FALSE(p.parse({"--help"}));
  EXPECT_THAT(testing::internal::GetCapturedStdout(), HasSubstr("--dim <D>"));
}

TEST(ArgParser, ErrorsNameTheFlag) {
  auto err = [](std::vector<std::string> argv) {
    return error_message([&] {
      ArgParser p = parser();
      p.parse(argv);
      p.integer("dim");
    });
  };
  EXPECT_THAT(err({"--dim", "8", "--nope", "1"}), HasSubstr("unknown flag '--nope'"));
  EXPECT_THAT(err({"--lr", "0.1"}), HasSubstr("missing required flag --dim"));
  EXPECT_THAT(err({"--dim"}), HasSubstr("flag --dim needs a value"));
  EXPECT_THAT(err({"--dim", "eight"}), HasSubstr("--dim expects an integer, got 'eight'"));
  EXPECT_THAT(err({"--dim", "8", "--dim", "9"}), HasSubstr("--dim given twice"));
  EXPECT_THAT(err({"--dim", "8", "stray"}), HasSubstr("unexpected argument 'stray'"));
  EXPECT_THAT(err({"--dim", "8", "--verbose=yes"}), HasSubstr("--verbose takes no value"));
}

// No flag takes NaN or an infinity: `filter --threshold nan` used to reject nothing, silently.
TEST(ArgParser, NumbersMustBeFinite) {
  for (const std::string bad : {"nan", "NaN", "-nan", "inf", "-inf", "infinity"}) {
    SCOPED_TRACE(bad);
    ArgParser p = parser();
    ASSERT_TRUE(p.parse({"--dim", "8", "--lr", bad}));
    EXPECT_THAT(error_message([&] { p.real("lr"); }),
                HasSubstr("flag --lr expects a finite number, got '" + bad + "'"));
  }
  ArgParser p = parser();
  ASSERT_TRUE(p.parse({"--dim", "8", "--lr", "-2.5e-3"}));
  EXPECT_DOUBLE_EQ(p.real("lr"), -2.5e-3);
}

}  // namespace
}  // namespace halo::test
