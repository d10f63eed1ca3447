// Where a run's training stands, read from the header of its checkpoint (see run_progress.hpp).
#include "outputs/run_progress.hpp"

#include <filesystem>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "cudaembed/checkpoint.hpp"
#include "cudaembed/error.hpp"
#include "text/input_text.hpp"

namespace cudaembed {
namespace fs = std::filesystem;

std::optional<TrainingProgress> training_progress(const std::string& run_dir) {
  const std::optional<Checkpoint> c = read_checkpoint_header((fs::path(run_dir) / "checkpoint.bin").string());
  if (!c) return std::nullopt;
  TrainingProgress p;
  p.epoch = static_cast<int64_t>(c->history.size()) + (c->in_progress.samples > 0 ? 1 : 0);
  try {
    p.planned = nlohmann::json::parse(c->config_json).at("options").at("epochs").get<int64_t>();
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;
  }
  return p;
}

std::string resume_command(const std::string& program, const std::string& run_dir) {
  return fmt::format("{} train --resume {}", shell_word(program), shell_word(run_dir));
}

void check_run_outputs_current(const std::string& run_dir, const std::string& program) {
  const auto p = training_progress(run_dir);
  if (!p || p->finished()) return;
  std::error_code ec;
  if (!fs::exists(fs::path(run_dir) / "embedding.npy", ec))
    throw Error(fmt::format("{}: training was interrupted at epoch {} of {}, before it wrote its outputs; continue it "
                            "with: {}",
                            run_dir, p->epoch, p->planned, resume_command(program, run_dir)));
  spdlog::warn("{}: training on to epoch {} was interrupted at epoch {}; these are the outputs from before it "
               "(finish it with: {})",
               run_dir, p->planned, p->epoch, resume_command(program, run_dir));
}

void refuse_resumable_run(const std::string& run_dir, const std::string& program) {
  const auto p = training_progress(run_dir);
  if (!p) return;
  if (!p->finished())
    throw Error(fmt::format("--out {}: holds a run interrupted at epoch {} of {}; continue it with: {} (add --epochs N "
                            "to change its length), or pass --force to start a new one there",
                            run_dir, p->epoch, p->planned, resume_command(program, run_dir)));
  throw Error(fmt::format("--out {}: a run of {} epochs already exists there; train it further with: {} --epochs N, "
                          "or pass --force to overwrite it, or choose another --out",
                          run_dir, p->planned, resume_command(program, run_dir)));
}

}  // namespace cudaembed
