// fake_yuma.cc: kernels/yuma.cu for fakecuda (see fakecuda.cc), in its own
// translation unit: its helpers and macros stay apart from llama.cu's.
#include <cuda.h>

#include "hostcuda.h"

#include "../../kernels/yuma.cu"

// kernels_yuma.inc (written by build.sh): KERNEL(name) for every extern "C"
// kernel of yuma.cu.
static const kernel yuma_kernels[] = {
#include "kernels_yuma.inc"
};

kernel_table yuma_kernel_table() { return {yuma_kernels, (int)(sizeof yuma_kernels / sizeof yuma_kernels[0])}; }
