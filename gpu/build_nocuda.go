//go:build !cuda

package gpu

const cudaBuilt = false
