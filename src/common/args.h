// A small command-line flag parser shared by every subcommand: typed getters, generated
// --help, and errors that name the offending flag.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace halo {

// The non-empty items of a comma-separated list ("a,b,,c" -> a, b, c).
std::vector<std::string> split_list(const std::string& text);
// A comma-separated list of positive integers; throws halo::Error naming --flag otherwise.
std::vector<int64_t> positive_integers(const std::string& text, const std::string& flag);

class ArgParser {
 public:
  ArgParser(std::string command, std::string summary);

  // A flag that takes a value; with no default it is optional unless `required`.
  ArgParser& option(const std::string& name, const std::string& metavar, const std::string& help,
                    std::optional<std::string> default_value = std::nullopt);
  ArgParser& required(const std::string& name, const std::string& metavar, const std::string& help);
  // A flag that may be given several times (e.g. --set a.b=v --set c=w).
  ArgParser& repeated(const std::string& name, const std::string& metavar, const std::string& help);
  // A flag without a value.
  ArgParser& toggle(const std::string& name, const std::string& help);
  // Everything after a bare "--" is kept verbatim (see rest()).
  ArgParser& allow_rest(const std::string& metavar, const std::string& help);

  // Parses argv (without the program and command names). Returns false when --help was
  // asked for (the help text is then printed to stdout). Throws halo::Error on bad input.
  bool parse(const std::vector<std::string>& argv);
  std::string help() const;

  bool has(const std::string& name) const;
  std::string str(const std::string& name) const;
  int64_t integer(const std::string& name) const;
  // A finite number: NaN and infinities are refused, naming the flag.
  double real(const std::string& name) const;
  bool on(const std::string& name) const;
  std::vector<std::string> all(const std::string& name) const;
  const std::vector<std::string>& rest() const { return rest_; }

 private:
  struct Spec {
    std::string metavar, help;
    std::optional<std::string> default_value;
    bool is_toggle = false, is_required = false, is_repeated = false;
  };
  const Spec& spec(const std::string& name) const;

  std::string command_, summary_;
  std::vector<std::string> order_;
  std::map<std::string, Spec> specs_;
  std::map<std::string, std::vector<std::string>> values_;
  std::optional<std::pair<std::string, std::string>> rest_spec_;
  std::vector<std::string> rest_;
};

}  // namespace halo
