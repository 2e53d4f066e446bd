package types

import (
	"strings"
	"testing"
)

func TestParamNames(t *testing.T) {
	seen := map[string]bool{}
	for p := ParamTempo; p < paramEnd; p++ {
		s := p.String()
		if s == "" || strings.HasPrefix(s, "Hyperparam(") || seen[s] {
			t.Errorf("hyperparameter %d: name %q missing or repeated", p, s)
		}
		seen[s] = true
		if got, err := ParseHyperparam(s); err != nil || got != p {
			t.Errorf("ParseHyperparam(%q) = %d, %v", s, got, err)
		}
	}
	for p := GlobalTransferFee; p < globalParamEnd; p++ {
		s := p.String()
		if s == "" || strings.HasPrefix(s, "GlobalParam(") || seen[s] {
			t.Errorf("global parameter %d: name %q missing or repeated", p, s)
		}
		seen[s] = true
		if got, err := ParseGlobalParam(s); err != nil || got != p {
			t.Errorf("ParseGlobalParam(%q) = %d, %v", s, got, err)
		}
	}
	for _, tc := range []struct{ got, want string }{
		{Hyperparam(0).String(), "Hyperparam(0)"},
		{paramEnd.String(), "Hyperparam(25)"},
		{GlobalParam(0).String(), "GlobalParam(0)"},
		{ParamMaxAllowedUIDs.String(), "max_allowed_uids"},
		{GlobalQuorumPermille.String(), "quorum_permille"},
		{ActionSetParam.String(), "set_param"},
		{ActionApproveFirmware.String(), "approve_firmware"},
		{ActionKind(9).String(), "ActionKind(9)"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
	if _, err := ParseHyperparam("tempoo"); err == nil {
		t.Error("ParseHyperparam accepted an unknown name")
	}
	if _, err := ParseGlobalParam(""); err == nil {
		t.Error("ParseGlobalParam accepted an empty name")
	}
}
