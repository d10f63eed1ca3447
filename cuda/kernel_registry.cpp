// The kernel variants --kernel can name. Adding a variant: its launcher in a .cu file, one line here.
#include <fmt/format.h>

#include "cudaembed/error.hpp"
#include "train_kernels.hpp"

namespace cudaembed {

const std::vector<KernelVariant>& kernel_variants() {
  static const std::vector<KernelVariant> variants = {
      {"fused", "one kernel for the batch's forward and backward, one for dense Adam; one step per launch pair",
       run_epoch_fused},
  };
  return variants;
}

const KernelVariant& find_kernel_variant(const std::string& name) {
  std::string allowed = "auto";
  for (const auto& v : kernel_variants()) {
    if (name == v.name) return v;
    allowed += fmt::format(", {}", v.name);
  }
  throw Error(fmt::format("--kernel: unknown variant '{}' (allowed: {})", name, allowed));
}

}  // namespace cudaembed
