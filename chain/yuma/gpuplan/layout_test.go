package gpuplan

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestKernelEnums: the descriptor slots and table fields of kernels/yuma.cu
// are the Go constants, in the same order.
func TestKernelEnums(t *testing.T) {
	src, err := os.ReadFile("../../../kernels/yuma.cu")
	if err != nil {
		t.Fatal(err)
	}
	enum := func(first string) []string {
		re := regexp.MustCompile(`(?s)enum \{\s*(` + first + `\b.*?)\};`)
		m := re.FindSubmatch(src)
		if m == nil {
			t.Fatalf("no enum starting with %s", first)
		}
		var names []string
		for _, f := range strings.FieldsFunc(string(m[1]), func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' }) {
			names = append(names, f)
		}
		return names
	}
	check := func(first string, want map[string]int, count string, n int) {
		names := enum(first)
		if len(names) != n+1 || names[n] != count {
			t.Fatalf("%s enum: %d names ending %s, want %d ending %s", first, len(names), names[len(names)-1], n+1, count)
		}
		for i, name := range names[:n] {
			if v, ok := want[name]; !ok || v != i {
				t.Errorf("%s is slot %d in yuma.cu, Go has %d (known %v)", name, i, v, ok)
			}
		}
	}
	check("D_S", map[string]int{
		"D_S": DS, "D_U": DU, "D_NW": DNW, "D_NB": DNB, "D_SUB": DSub, "D_USUB": DUSub, "D_LU": DLU, "D_BAR": DBAR,
		"D_COMMIT": DCommit, "D_UFLAG": DUFlag, "D_ACTIVE": DActive, "D_STAKE": DStake, "D_USEIDX": DUseIdx,
		"D_USESTAKE": DUseStake, "D_WPTR": DWPtr, "D_BPTR": DBPtr, "D_WENT": DWEnt, "D_BENT": DBEnt,
		"D_CONS": DCons, "D_VTRUST": DVTrust, "D_INC": DInc, "D_DIVS": DDivs, "D_SEM": DSEm, "D_VEM": DVEm,
		"D_EM": DEm, "D_ROWOFF": DRowOff, "D_SSTATE": DSState, "D_TOTAL": DTotal, "D_WV": DWV, "D_CV": DCV,
		"D_XV": DXV, "D_BV": DBV, "D_COLA": DColA, "D_COLB": DColB, "D_COLM": DColM, "D_ROWCNT": DRowCnt,
		"D_D1": DD1, "D_D2": DD2, "D_D3": DD3, "D_WFLAG": DWFlag, "D_NEXTW": DNextW, "D_BFLAG": DBFlag,
		"D_NEXTB": DNextB, "D_HW": DHW, "D_HB": DHB, "D_BONDOUT": DBondOut, "D_ROWT": DRowT, "D_PMW": DPMW, "D_PMB": DPMB,
	}, "D_COUNT", DCount)
	check("SF_N", map[string]int{
		"SF_N": SFN, "SF_UID": SFUid, "SF_CELL": SFCell, "SF_OWNER": SFOwner, "SF_CR": SFCR, "SF_MINORITY": SFMinority,
		"SF_USEK": SFUseK, "SF_YUMA3": SFYuma3, "SF_LIQIN": SFLiqIn, "SF_MODE": SFMode, "SF_BETA": SFBeta,
		"SF_EMAA": SFEmaA, "SF_LOW": SFLow, "SF_HIGH": SFHigh, "SF_SCALE": SFScale, "SF_LT": SFLT,
		"SF_ACTZERO": SFActZero, "SF_RAO": SFRao,
	}, "SUB_FIELDS", SubFields)
	check("SS_LIQ", map[string]int{"SS_LIQ": SSLiq, "SS_BONDN": SSBondN, "SS_BONDBASE": SSBondBase}, "STATE_FIELDS", StateFields)
}
