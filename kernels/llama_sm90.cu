// llama_sm90.cu: kernels/llama.cu built for compute_90 (Hopper: H100, H200),
// where the products use programmatic dependent launch (griddepcontrol; see
// pdl_wait in llama.cu). gpu.Llama loads this module on devices of compute
// capability 9.0 and newer, llama.ptx on the others.
#define TAOBOX_SM90 1
#include "llama.cu"
