package types

import "fmt"

// Names users see for the enums of calls.go: the extrinsic and
// hyperparameter names subtensor and btcli use, in snake_case.

var callKindNames = [...]string{
	KindTransfer:        "transfer",
	KindRegisterNetwork: "register_network",
	KindSetHyperparam:   "set_hyperparam",
	KindBurnedRegister:  "burned_register",
	KindServe:           "serve",
	KindAddStake:        "add_stake",
	KindRemoveStake:     "remove_stake",
	KindSetTake:         "set_take",
	KindSetWeights:      "set_weights",
	KindCommitWeights:   "commit_weights",
	KindRevealWeights:   "reveal_weights",
	KindSetRootWeights:  "set_root_weights",
	KindPropose:         "propose",
	KindVote:            "vote",
}

// String returns the call's extrinsic name ("transfer", "set_weights", …),
// or "CallKind(N)" for an unknown kind.
func (k CallKind) String() string {
	if int(k) < len(callKindNames) && callKindNames[k] != "" {
		return callKindNames[k]
	}
	return fmt.Sprintf("CallKind(%d)", uint8(k))
}

var hyperparamNames = [...]string{
	ParamTempo:                "tempo",
	ParamKappa:                "kappa",
	ParamImmunityPeriod:       "immunity_period",
	ParamMinAllowedWeights:    "min_allowed_weights",
	ParamMaxWeightLimit:       "max_weight_limit",
	ParamWeightsVersion:       "weights_version",
	ParamWeightsRateLimit:     "weights_rate_limit",
	ParamActivityCutoff:       "activity_cutoff",
	ParamMaxAllowedUIDs:       "max_allowed_uids",
	ParamMaxAllowedValidators: "max_allowed_validators",
	ParamBondsMovingAverage:   "bonds_moving_average",
	ParamBondsPenalty:         "bonds_penalty",
	ParamYuma3:                "yuma3",
	ParamLiquidAlpha:          "liquid_alpha",
	ParamAlphaLow:             "alpha_low",
	ParamAlphaHigh:            "alpha_high",
	ParamAlphaSteepness:       "alpha_steepness",
	ParamCommitReveal:         "commit_reveal",
	ParamRevealPeriod:         "reveal_period",
	ParamMinBurn:              "min_burn",
	ParamMaxBurn:              "max_burn",
	ParamServingRateLimit:     "serving_rate_limit",
	ParamBurnHalfLife:         "burn_half_life",
	ParamBurnIncreaseMult:     "burn_increase_mult",
	paramEnd:                  "",
}

// Valid reports whether p is a known hyperparameter (in [ParamTempo, the last]).
func (p Hyperparam) Valid() bool { return p >= ParamTempo && p < paramEnd }

// String returns the hyperparameter's name ("tempo", "max_allowed_uids", …),
// or "Hyperparam(N)" for an unknown one.
func (p Hyperparam) String() string {
	if p.Valid() {
		return hyperparamNames[p]
	}
	return fmt.Sprintf("Hyperparam(%d)", uint8(p))
}

// ParseHyperparam returns the hyperparameter named name (as String writes it).
func ParseHyperparam(name string) (Hyperparam, error) {
	for p := ParamTempo; p < paramEnd; p++ {
		if hyperparamNames[p] == name {
			return p, nil
		}
	}
	return 0, fmt.Errorf("types: unknown hyperparameter %s", quote(name))
}

var globalParamNames = [...]string{
	GlobalTransferFee:      "transfer_fee",
	GlobalNetworkMinLock:   "network_min_lock",
	GlobalNetworkRateLimit: "network_rate_limit",
	GlobalSubnetLimit:      "subnet_limit",
	GlobalStakeThreshold:   "stake_threshold",
	GlobalMaxDelegateTake:  "max_delegate_take",
	GlobalVotingPeriod:     "voting_period",
	GlobalQuorumPermille:   "quorum_permille",
	globalParamEnd:         "",
}

// Valid reports whether p is a known global parameter.
func (p GlobalParam) Valid() bool { return p >= GlobalTransferFee && p < globalParamEnd }

// String returns the parameter's name ("transfer_fee", …), or
// "GlobalParam(N)" for an unknown one.
func (p GlobalParam) String() string {
	if p.Valid() {
		return globalParamNames[p]
	}
	return fmt.Sprintf("GlobalParam(%d)", uint8(p))
}

// ParseGlobalParam returns the global parameter named name (as String
// writes it).
func ParseGlobalParam(name string) (GlobalParam, error) {
	for p := GlobalTransferFee; p < globalParamEnd; p++ {
		if globalParamNames[p] == name {
			return p, nil
		}
	}
	return 0, fmt.Errorf("types: unknown global parameter %s", quote(name))
}

// String returns "set_param", "approve_firmware", or "ActionKind(N)".
func (k ActionKind) String() string {
	switch k {
	case ActionSetParam:
		return "set_param"
	case ActionApproveFirmware:
		return "approve_firmware"
	}
	return fmt.Sprintf("ActionKind(%d)", uint8(k))
}
