// Names of configuration choices, for flags and run.json.
#include <fmt/format.h>

#include "cudaembed/config.hpp"
#include "cudaembed/error.hpp"

namespace cudaembed {

SecondMoment parse_second_moment(const std::string& name) {
  if (name == "lookups") return SecondMoment::lookups;
  if (name == "rows") return SecondMoment::rows;
  throw Error(fmt::format("--adam-v: unknown mode '{}' (allowed: lookups, rows)", name));
}

const char* to_string(SecondMoment moment) { return moment == SecondMoment::lookups ? "lookups" : "rows"; }

}  // namespace cudaembed
