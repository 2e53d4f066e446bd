// Package assets holds the files built into the taobox binary.
//
// tiny.gguf is taobox's own model: a small LLaMA (dim 128, 4 layers, 4
// heads, SwiGLU 192, context 128, tied embeddings, F32) trained from
// scratch on stories from the procedural grammar in package model/train,
// with that grammar's SentencePiece-style vocabulary in its metadata. It
// contains no one else's weights or text. `taobox model train-tiny` (or
// `make train-tiny`) reproduces it bit for bit on the same machine; see
// TinySHA256.
package assets

import _ "embed"

//go:embed tiny.gguf
var tiny []byte

// TinySHA256 is the SHA-256 of TinyModel(), in hex.
const TinySHA256 = "609b6ec530f3280436be6ee821f55fdc9b86483cd6608e73f9dfbe896758ae09"

// TinyName is how commands name the embedded model in place of a path.
const TinyName = "(embedded tiny model)"

// TinyModel returns the embedded tiny model, a GGUF v3 file. The slice is
// shared by every caller and must not be modified.
func TinyModel() []byte { return tiny }
