//go:build !cuda

package train

import (
	"taobox/model"
)

// ModelName is general.name of the exported model.
const ModelName = "taobox-tiny-stories"

// GGUF returns the trainer's current model as an F32 GGUF file (see Export).
func (t *Trainer) GGUF() ([]byte, error) {
	m, err := t.Model()
	if err != nil {
		return nil, err
	}
	return Export(m, t.Vocab)
}

// Export writes m as an F32 GGUF file with model.ExportGGUF, named
// ModelName, with v as its SentencePiece ("llama") tokenizer: tokens,
// scores, token types, <unk>/<s>/</s> ids, BOS added, a space prefixed.
func Export(m *model.Model, v *Vocab) ([]byte, error) {
	return model.ExportGGUF(m, model.GGUFExport{Name: ModelName, Tokenizer: v.TokenizerConfig()})
}

// TokenizerConfig is v as model.Tokenizer metadata.
func (v *Vocab) TokenizerConfig() *model.TokenizerConfig {
	bos, eos, unk := BOS, EOS, UNK
	yes, no := true, false
	return &model.TokenizerConfig{
		Kind:   "llama",
		Tokens: v.Pieces, Scores: v.Scores, Types: v.Types,
		BOS: &bos, EOS: &eos, UNK: &unk,
		AddBOS: &yes, AddEOS: &no, AddSpacePrefix: &yes,
	}
}
