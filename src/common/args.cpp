// Implementation of the command-line flag parser (see args.h).
#include "common/args.h"

#include <cmath>
#include <iostream>
#include <sstream>

#include "common/error.h"

namespace halo {

ArgParser::ArgParser(std::string command, std::string summary)
    : command_(std::move(command)), summary_(std::move(summary)) {
  toggle("help", "print this help and exit");
}

ArgParser& ArgParser::option(const std::string& name, const std::string& metavar,
                             const std::string& help, std::optional<std::string> default_value) {
  HALO_CHECK(!specs_.count(name), "flag --", name, " declared twice");
  order_.push_back(name);
  specs_[name] = Spec{metavar, help, std::move(default_value)};
  return *this;
}

ArgParser& ArgParser::required(const std::string& name, const std::string& metavar,
                               const std::string& help) {
  option(name, metavar, help);
  specs_[name].is_required = true;
  return *this;
}

ArgParser& ArgParser::repeated(const std::string& name, const std::string& metavar,
                               const std::string& help) {
  option(name, metavar, help);
  specs_[name].is_repeated = true;
  return *this;
}

ArgParser& ArgParser::toggle(const std::string& name, const std::string& help) {
  option(name, "", help);
  specs_[name].is_toggle = true;
  return *this;
}

ArgParser& ArgParser::allow_rest(const std::string& metavar, const std::string& help) {
  rest_spec_ = std::make_pair(metavar, help);
  return *this;
}

const ArgParser::Spec& ArgParser::spec(const std::string& name) const {
  auto it = specs_.find(name);
  HALO_CHECK(it != specs_.end(), "internal: flag --", name, " was never declared");
  return it->second;
}

bool ArgParser::parse(const std::vector<std::string>& argv) {
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& arg = argv[i];
    if (arg == "--") {
      HALO_CHECK(rest_spec_, command_,
                 ": unexpected '--' (this command takes no trailing arguments)");
      rest_.assign(argv.begin() + static_cast<long>(i) + 1, argv.end());
      break;
    }
    HALO_CHECK(arg.size() > 2 && arg.rfind("--", 0) == 0, command_, ": unexpected argument '", arg,
               "' (flags start with --; see --help)");
    std::string name = arg.substr(2), value;
    bool inline_value = false;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      inline_value = true;
    }
    auto it = specs_.find(name);
    HALO_CHECK(it != specs_.end(), command_, ": unknown flag '--", name, "' (see --help)");
    const Spec& s = it->second;
    if (s.is_toggle) {
      HALO_CHECK(!inline_value, command_, ": flag --", name, " takes no value");
      value = "true";
    } else if (!inline_value) {
      HALO_CHECK(i + 1 < argv.size(), command_, ": flag --", name, " needs a value <", s.metavar,
                 ">");
      value = argv[++i];
    }
    auto& slot = values_[name];
    HALO_CHECK(s.is_repeated || slot.empty(), command_, ": flag --", name, " given twice");
    slot.push_back(value);
  }
  if (on("help")) {
    std::cout << help();
    return false;
  }
  for (const auto& name : order_) {
    HALO_CHECK(!specs_.at(name).is_required || values_.count(name), command_,
               ": missing required flag --", name, " <", specs_.at(name).metavar, ">");
  }
  return true;
}

std::string ArgParser::help() const {
  std::ostringstream out;
  out << "usage: halo-clip " << command_ << " [flags]";
  if (rest_spec_) out << " -- " << rest_spec_->first;
  out << "\n\n" << summary_ << "\n\nflags:\n";
  for (const auto& name : order_) {
    const Spec& s = specs_.at(name);
    std::string left = "  --" + name + (s.is_toggle ? "" : " <" + s.metavar + ">");
    out << left << std::string(left.size() < 30 ? 30 - left.size() : 1, ' ') << s.help;
    if (s.is_required) out << " (required)";
    if (s.default_value) out << " (default: " << *s.default_value << ")";
    if (s.is_repeated) out << " (repeatable)";
    out << "\n";
  }
  if (rest_spec_) out << "  -- " << rest_spec_->first << "  " << rest_spec_->second << "\n";
  return out.str();
}

bool ArgParser::has(const std::string& name) const {
  return values_.count(name) || spec(name).default_value.has_value();
}

std::string ArgParser::str(const std::string& name) const {
  const Spec& s = spec(name);
  if (auto it = values_.find(name); it != values_.end()) return it->second.back();
  HALO_CHECK(s.default_value, command_, ": flag --", name, " was not given");
  return *s.default_value;
}

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

std::vector<int64_t> positive_integers(const std::string& text, const std::string& flag) {
  std::vector<int64_t> out;
  for (const auto& item : split_list(text)) {
    size_t used = 0;
    int64_t v = 0;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    HALO_CHECK(used == item.size() && v > 0, "--", flag,
               " expects comma-separated positive integers, got '", text, "'");
    out.push_back(v);
  }
  HALO_CHECK(!out.empty(), "--", flag, " expects comma-separated positive integers, got '", text,
             "'");
  return out;
}

int64_t ArgParser::integer(const std::string& name) const {
  const std::string text = str(name);
  size_t used = 0;
  int64_t v = 0;
  try {
    v = std::stoll(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  HALO_CHECK(used == text.size() && !text.empty(), command_, ": flag --", name,
             " expects an integer, got '", text, "'");
  return v;
}

double ArgParser::real(const std::string& name) const {
  const std::string text = str(name);
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  HALO_CHECK(used == text.size() && !text.empty(), command_, ": flag --", name,
             " expects a number, got '", text, "'");
  // No flag takes NaN or an infinity: each would silently turn a comparison off.
  HALO_CHECK(std::isfinite(v), command_, ": flag --", name, " expects a finite number, got '", text,
             "'");
  return v;
}

bool ArgParser::on(const std::string& name) const {
  spec(name);
  return values_.count(name) > 0;
}

std::vector<std::string> ArgParser::all(const std::string& name) const {
  spec(name);
  auto it = values_.find(name);
  return it == values_.end() ? std::vector<std::string>{} : it->second;
}

}  // namespace halo
