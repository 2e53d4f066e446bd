//go:build cuda

package main

import (
	"errors"
	"flag"
)

// taobox-cuda leaves out `model train-tiny`: gorgonia.org/gorgonia (package
// model/train) reads the build tag `cuda` too, and with it links its own
// CUDA engine (cuDNN and cuBLAS headers and libraries), which taobox-cuda
// neither has nor needs.
var modelTrainTinyCommand = &command{
	name:    "model train-tiny",
	summary: "train the embedded tiny model (in taobox, not taobox-cuda)",
	help:    "Not in taobox-cuda (gorgonia's own cuda build tag would link cuDNN and\ncuBLAS); run 'taobox model train-tiny'.",
	setup: func(*flag.FlagSet) func(*env) error {
		return func(*env) error {
			// exit 1, as for the other commands this build lacks the means for
			return errors.New("taobox-cuda does not train; use taobox model train-tiny")
		}
	},
}
