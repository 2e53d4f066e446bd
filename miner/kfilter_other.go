//go:build !linux

package miner

import (
	"log/slog"
	"net"
	"net/netip"
	"time"
)

// initialDropper is Linux only; elsewhere refusals are replies.
type initialDropper struct{}

func newInitialDropper(net.PacketConn, *slog.Logger, time.Duration) *initialDropper { return nil }

func (*initialDropper) hold(netip.Addr, time.Time, time.Time) bool  { return false }
func (*initialDropper) exemptFrom(netip.Addr, time.Time, time.Time) {}
func (*initialDropper) close()                                      {}
func (*initialDropper) dropping(time.Time) (bool, int)              { return false, 0 }
