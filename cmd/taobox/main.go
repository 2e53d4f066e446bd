// Command taobox is the appliance binary: one program for the chain node,
// miner, validator, wallet and firmware of a Bittensor-style network: the
// Yuma consensus epoch, a BFT-finalized chain node, miner and validator,
// firmware, wallets, transactions, the status dashboard, bench and a
// one-process devnet; `taobox help` lists every command.
//
// Exit status: 0 on success; 2 when the input or the command line is
// malformed, with exactly one line on stderr, "taobox: <cmd>: <field>:
// <problem>", and nothing on stdout; 1 for any other failure.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"

	"taobox/chain/yuma"
)

// version is set at build time: go build -ldflags "-X main.version=v1.2.3".
var version = "dev"

// command is one entry of the command table.
type command struct {
	name    string // full name, words separated by spaces: "yuma epoch"
	args    string // synopsis after the name: "[--in FILE]"
	summary string // one line for the command list
	help    string // what `taobox help <name>` prints above the flags
	// setup defines the command's flags on fs and returns the function that
	// runs it once they are parsed. A nil setup makes a group: the command
	// prints the list of its subcommands.
	setup func(fs *flag.FlagSet) func(e *env) error
	// minArgs and maxArgs bound the positional arguments (named in args,
	// such as NAME); they may come before, between or after the flags and
	// reach the command as env.args. Both zero: no positional arguments.
	minArgs, maxArgs int
}

// env is what a running command may touch.
type env struct {
	ctx    context.Context
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer // logs and progress of long-running commands
	args   []string  // positional arguments (see command.minArgs)
}

// commands is the command table, in the order `taobox help` lists it.
var commands = []*command{
	versionCommand,
	yumaCommand,
	yumaEpochCommand,
	yumaBatchCommand,
	yumaDemoCommand,
	yumaBenchCommand,
	yumaCheckCommand,
	walletCommand,
	walletCreateCommand,
	walletNewColdkeyCommand,
	walletNewHotkeyCommand,
	walletRegenColdkeyCommand,
	walletRegenHotkeyCommand,
	walletRegenColdkeypubCommand,
	walletEncryptCommand,
	walletListCommand,
	walletShowCommand,
	genesisCommand,
	nodeCommand,
	devnetCommand,
	minerCommand,
	metagraphCommand,
	statusCommand,
	validatorCommand,
	chatCommand,
	txCommand,
	txTransferCommand,
	txRegisterNetworkCommand,
	txHyperparamCommand,
	txRegisterCommand,
	txServeCommand,
	txStakeCommand,
	txStakeAddCommand,
	txStakeRemoveCommand,
	txTakeCommand,
	txWeightsCommand,
	txWeightsSetCommand,
	txWeightsCommitCommand,
	txWeightsRevealCommand,
	txRootWeightsCommand,
	txProposeCommand,
	txVoteCommand,
	txSubmitCommand,
	modelCommand,
	modelInfoCommand,
	modelGenerateCommand,
	modelScoreCommand,
	modelConvertCommand,
	modelTrainTinyCommand,
	modelSynthCommand,
	benchCommand,
	benchModelCommand,
	benchGPUCommand,
	gpuCommand,
	gpuInfoCommand,
	selftestCommand,
	runnerCommand,
	firmwareCommand, firmwareBootCommand, firmwareProbeCommand, firmwareSelftestCommand, firmwareReportCommand, firmwareStatusCommand, firmwareUpdateCommand, firmwareKeygenCommand, firmwareSignCommand, firmwareInstallCommand,
	helpCommand,
}

var versionCommand = &command{
	name:    "version",
	summary: "print the version, the Go version and the platform",
	help:    "Prints the taobox version (set at build time; \"dev\" otherwise), the Go\nversion it was built with, and GOOS/GOARCH.",
	setup: func(*flag.FlagSet) func(*env) error {
		return func(e *env) error {
			_, err := fmt.Fprintf(e.stdout, "taobox %s %s %s/%s\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return err
		}
	},
}

// helpCommand is dispatched by run itself; the entry documents it.
var helpCommand = &command{
	name:    "help",
	args:    "[command]",
	summary: "explain taobox or one command (also: taobox <command> --help)",
	help:    "With no argument, lists every command. With a command name, such as\n'taobox help yuma epoch', explains that command and its flags.",
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// usageError is a malformed command line; like a *yuma.FieldError it exits
// with status 2.
type usageError struct{ field, problem string }

func (e *usageError) Error() string { return e.field + ": " + e.problem }

// listenError is the error for a failed listen on the address flag gave:
// a plain one (exit 1, with what to do) when the address is taken or not
// this machine's, a usage error (exit 2) when it is not an address.
func listenError(flag, addr string, err error) error {
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		return fmt.Errorf("--%s %s: %w (another process holds it: pick another with --%s)", flag, addr, err, flag)
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return fmt.Errorf("--%s %s: %w (not an address of this machine: pick another with --%s)", flag, addr, err, flag)
	case errors.Is(err, syscall.EACCES):
		return fmt.Errorf("--%s %s: %w (ports below 1024 need privileges: pick a higher one with --%s)", flag, addr, err, flag)
	}
	return &usageError{flag, err.Error()}
}

// run runs the command line args and returns the exit status. Commands
// write stdout in one piece after their work succeeded, so a failure leaves
// stdout empty.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) (code int) {
	name := "taobox"
	defer func() {
		if p := recover(); p != nil {
			fmt.Fprintf(stderr, "taobox: %s: internal error: %v\n"+
				"This is a bug in taobox. Please report it with the command line, its input and the trace below.\n%s",
				name, p, debug.Stack())
			code = 1
		}
	}()

	if len(args) == 0 {
		writeOverview(stdout)
		return 0
	}
	if args[0] == "help" || isHelpFlag(args[0]) {
		return runHelp(args[1:], stdout, stderr)
	}

	cmd, rest := lookup(args)
	if cmd == nil {
		return fail(stderr, args[0], &usageError{"command", fmt.Sprintf("%q is not a taobox command (see 'taobox help')", args[0])})
	}
	name = cmd.name
	if cmd.setup == nil {
		if len(rest) > 0 && !isHelpFlag(rest[0]) {
			return fail(stderr, cmd.name, &usageError{"command", fmt.Sprintf("%q is not a %s command (see 'taobox help %s')", rest[0], cmd.name, cmd.name)})
		}
		writeHelp(stdout, cmd)
		return 0
	}

	fs := flag.NewFlagSet(cmd.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	runCmd := cmd.setup(fs)
	var positional []string
	for {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				writeHelp(stdout, cmd)
				return 0
			}
			return fail(stderr, cmd.name, &usageError{"flags", fmt.Sprintf("%v (see 'taobox help %s')", err, cmd.name)})
		}
		if fs.NArg() == 0 {
			break
		}
		// After "--" every argument is positional; otherwise take one and
		// parse the flags after it.
		take := 1
		if used := len(rest) - fs.NArg(); used > 0 && rest[used-1] == "--" {
			take = fs.NArg()
		}
		for _, a := range fs.Args()[:take] {
			if len(positional) == cmd.maxArgs {
				return fail(stderr, cmd.name, &usageError{"args", fmt.Sprintf("unexpected argument %q (see 'taobox help %s')", a, cmd.name)})
			}
			positional = append(positional, a)
		}
		rest = fs.Args()[take:]
	}
	if len(positional) < cmd.minArgs {
		return fail(stderr, cmd.name, &usageError{"args", fmt.Sprintf("missing arguments: usage: taobox %s %s (see 'taobox help %s')", cmd.name, cmd.args, cmd.name)})
	}
	if err := runCmd(&env{ctx: ctx, stdin: stdin, stdout: stdout, stderr: stderr, args: positional}); err != nil {
		return fail(stderr, cmd.name, err)
	}
	return 0
}

// fail reports err on one line of stderr and returns the exit status: 2 for
// malformed input or usage, 1 otherwise.
func fail(stderr io.Writer, name string, err error) int {
	line := fmt.Sprintf("taobox: %s: %s", name, dedupPrefix(name, err.Error()))
	fmt.Fprintln(stderr, strings.ReplaceAll(line, "\n", " "))
	var fe *yuma.FieldError
	var ue *usageError
	if errors.As(err, &fe) || errors.As(err, &ue) {
		return 2
	}
	return 1
}

// dedupPrefix drops from msg the prefixes that repeat what the line
// already says: the command's own name ("node: ..." under taobox node),
// and a leading "x: " said twice in a row ("metrics: metrics: ...").
func dedupPrefix(name, msg string) string {
	last := name[strings.LastIndexByte(name, ' ')+1:]
	for strings.HasPrefix(msg, last+": ") {
		msg = msg[len(last)+2:]
	}
	for {
		i := strings.Index(msg, ": ")
		if i <= 0 || !strings.HasPrefix(msg[i+2:], msg[:i+2]) {
			return msg
		}
		msg = msg[i+2:]
	}
}

func isHelpFlag(s string) bool {
	switch s {
	case "-h", "-help", "--help":
		return true
	}
	return false
}

// lookup finds the command whose name is the longest run of leading words
// of args, and returns the remaining args.
func lookup(args []string) (*command, []string) {
	var best *command
	var rest []string
	for _, c := range commands {
		words := strings.Fields(c.name)
		if len(words) > len(args) || (best != nil && len(words) <= len(strings.Fields(best.name))) {
			continue
		}
		if slices.Equal(words, args[:len(words)]) {
			best, rest = c, args[len(words):]
		}
	}
	return best, rest
}

func runHelp(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		writeOverview(stdout)
		return 0
	}
	cmd, rest := lookup(args)
	if cmd == nil || len(rest) > 0 {
		return fail(stderr, "help", &usageError{"command", fmt.Sprintf("%q is not a taobox command (see 'taobox help')", strings.Join(args, " "))})
	}
	writeHelp(stdout, cmd)
	return 0
}

// writeOverview prints what taobox is and every command.
func writeOverview(w io.Writer) {
	var b bytes.Buffer
	b.WriteString("taobox is one appliance binary for a Bittensor-style network. It runs a\n" +
		"miner (LLM inference from GGUF models over QUIC) and a validator (verifies\n" +
		"answers by re-scoring log-probs, sets weights); a chain node finalized by\n" +
		"BFT consensus among the validators, paying miners and validators through\n" +
		"the Yuma consensus epoch (bit for bit as subtensor, on the CPU or batched\n" +
		"on the GPU); the appliance firmware (boot, self-test, signed updates);\n" +
		"encrypted wallets and transactions; the 'status' dashboard; 'bench' for\n" +
		"this machine; and a whole devnet in one process ('taobox devnet').\n\n" +
		"Usage:\n  taobox <command> [flags]\n\nCommands:\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 3, ' ', 0)
	for _, c := range commands {
		fmt.Fprintf(tw, "  %s\t%s\n", c.name, c.summary)
	}
	tw.Flush()
	b.WriteString("\nRun 'taobox help <command>' for its flags and details.\n" +
		"Exit status: 0 success; 2 malformed input or command line (one line on stderr);\n1 any other failure.\n")
	w.Write(b.Bytes())
}

// writeHelp prints the long help of one command, its subcommands and flags.
func writeHelp(w io.Writer, c *command) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "Usage: taobox %s", c.name)
	if c.args != "" {
		fmt.Fprintf(&b, " %s", c.args)
	}
	fmt.Fprintf(&b, "\n\n%s\n", c.help)

	tw := tabwriter.NewWriter(&b, 0, 0, 3, ' ', 0)
	subs := 0
	for _, s := range commands {
		if strings.HasPrefix(s.name, c.name+" ") {
			if subs == 0 {
				fmt.Fprint(tw, "\nCommands:\n")
			}
			subs++
			fmt.Fprintf(tw, "  %s\t%s\n", s.name, s.summary)
		}
	}
	tw.Flush()

	if c.setup != nil {
		fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
		c.setup(fs)
		n := 0
		fs.VisitAll(func(*flag.Flag) { n++ })
		if n > 0 {
			b.WriteString("\nFlags:\n")
			fs.SetOutput(&b)
			fs.PrintDefaults()
		}
	}
	w.Write(b.Bytes())
}
