// The one exception type cudaembed throws: a message a user can act on (file:line, flag, range).
#pragma once

#include <stdexcept>
#include <string>

namespace cudaembed {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace cudaembed
