// Package bench is `taobox bench`: the workloads that measure a machine
// for this network, a runner that times them with a clock it is given,
// and the report's JSON form, table, saved history and chart.
//
// The workloads are fixed and seeded so that two machines running the
// same seed do the same work and their reports compare:
//
//   - Yuma (SectionYuma): YumaWorkloads — one 256-uid subnet, one
//     4096-uid subnet, a batch of 128 256-uid subnets — built by
//     yuma.Synthetic from the seed and aged by one or two epochs, run on
//     the CPU engine and on the GPU engine (Config.GPU, the runner's
//     engine) after checking its outputs against the CPU's bit for bit;
//   - model (SectionModel): decode and prompt tokens/s of the models the
//     caller loads (model.Model's BenchDecode and BenchPrompt);
//   - QUIC (SectionQUIC): a loopback client and server with quic-go and
//     the task protocol's TLS: handshake, 64-byte round trips, one
//     stream's throughput;
//   - disk (SectionDisk): write+fsync latency and goleveldb Sync=true
//     block-sized batches per second, in a temporary folder under the data
//     folder.
//
// Run turns a Config into a Report; it reads time only through
// Config.Now and reports progress through Config.Progress. Save and
// LoadHistory keep reports under <data>/bench; WriteTable and Plot show a
// report beside earlier comparable ones (same seed and Quick setting).
// docs/bench.md documents the JSON schema (Schema) field by field.
package bench
