// Package firmware is the appliance layer of taobox: it boots the box,
// checks it, runs its roles and updates it.
//
//   - Boot (boot.go): a hardware probe (CPU model and features, memory, free
//     disk of the data directory, NVIDIA GPUs), the backend choice of the GPU
//     runner launcher (gpu/runner), the self-test (known-answer tests of the
//     fixed-point arithmetic, the Yuma epoch, the model engine on the
//     embedded tiny model and, with a GPU, the CUDA kernels through
//     taobox-cuda's own selftest), then the supervisor. Report is the
//     one-screen summary, also as JSON.
//   - Supervisor (supervise.go, policy.go): each configured role (node,
//     miner, validator) is a child process of the taobox binary, so a crash
//     in one leaves the others running. Policy holds the pure decisions
//     (backoff schedule, watchdog verdicts) with time as an input; the
//     Supervisor does the process I/O. A role whose ProgressProbe stops
//     advancing is killed and restarted. Cancelling Run (SIGTERM) forwards
//     SIGTERM to every child, waits up to StopTimeout, then kills.
//   - Updates (bundle.go, slots.go, update.go): a Bundle is a tar of the
//     binary, a JSON manifest and an ed25519 signature over the manifest
//     (domain separated). Update verifies the signature against the
//     configured release keys, the binary against the manifest's SHA-256,
//     and asks the local node whether governance approved that SHA-256
//     (GET /v1/firmware/{hash}); then it installs into the inactive of two
//     slots (<data>/firmware/slot-a, slot-b), switches the `current`
//     pointer atomically (temporary file + fsync + rename), marks it trial,
//     runs the new binary's `firmware selftest` within a deadline and marks
//     it good, or switches back. Recover, run first at every boot, rolls a
//     slot left in trial (a crash mid-update) back. The data directory's
//     chain, wallets and scores are never touched by an update.
//
// Invariant (tested by killing the updater with SIGKILL at every step): the
// pointer names either a good slot whose binary is complete and fsynced, or
// a trial slot whose previous slot is good; Resolve after Recover always
// returns a bootable binary (a slot's, or the installed one when no slot
// was ever made good).
package firmware
