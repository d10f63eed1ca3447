// Captures the work a function enqueues on a stream as an executable CUDA graph, for replay with
// cudaGraphLaunch. Used where every launch reads its per-step inputs from device memory.
#pragma once

#include <cuda_runtime.h>

#include "cuda_check.hpp"

namespace cudaembed {

// Runs `enqueue` under stream capture (thread-local mode: other threads' CUDA calls are not
// disturbed) and instantiates what it enqueued. If `enqueue` throws, the capture is ended and its
// graph freed before the error goes on, so the stream is usable again.
template <class F>
cudaGraphExec_t capture_graph(cudaStream_t stream, F&& enqueue) {
  cudaGraph_t graph = nullptr;
  CE_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
  try {
    enqueue();
  } catch (...) {
    cudaStreamEndCapture(stream, &graph);
    if (graph) cudaGraphDestroy(graph);
    throw;
  }
  CE_CUDA_CHECK(cudaStreamEndCapture(stream, &graph));
  cudaGraphExec_t exec = nullptr;
  const cudaError_t made = cudaGraphInstantiate(&exec, graph, 0);
  cudaGraphDestroy(graph);
  CE_CUDA_CHECK(made);
  return exec;
}

}  // namespace cudaembed
