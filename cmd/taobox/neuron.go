package main

import (
	"crypto/ed25519"
	"encoding/hex"
	"fmt"

	"taobox/wallet"
)

// neuron is what `taobox miner` and `taobox validator` both start from: a
// node client, the hotkey that signs, and the model with its SHA-256.
type neuron struct {
	c    *apiClient
	key  ed25519.PrivateKey
	mf   *modelFile
	hash [32]byte // SHA-256 of the model file, as tasks name it
}

// openNeuron checks --netuid, connects to the node, unlocks the hotkey of
// the wallet with u and loads the model (the embedded tiny model when path
// is ""). A hotkey named by name needs only its file, not the coldkey
// (wallet.LoadHotkey); one named by address is looked up in the wallet.
func openNeuron(netuid *optUint, nodeURL, wallets, walletName, hotkey, modelPath string, u *wallet.Unlocker) (*neuron, error) {
	if err := need("netuid", netuid); err != nil {
		return nil, err
	}
	c, err := newClient(nodeURL)
	if err != nil {
		return nil, err
	}
	key, err := neuronHotkey(wallets, walletName, hotkey, u)
	if err != nil {
		return nil, err
	}
	mf, err := loadModelFile("model", modelPath)
	if err != nil {
		return nil, err
	}
	n := &neuron{c: c, key: key, mf: mf}
	if _, err := hex.Decode(n.hash[:], []byte(mf.sha256)); err != nil {
		return nil, fmt.Errorf("model hash %q: %w", mf.sha256, err)
	}
	return n, nil
}
