package tools

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// Exit codes reported for commands that did not exit by themselves.
const (
	// ExitTimeout is reported when the bash timeout killed the command,
	// as timeout(1) does.
	ExitTimeout = 124
	// ExitKilled is reported when the command was killed because the
	// context was cancelled, or died from a signal.
	ExitKilled = -1
)

// outputDrainGrace bounds how long we keep reading output after bash and
// its process group are gone: a daemon that escaped the group (setsid) may
// still hold the pipe open.
const outputDrainGrace = 2 * time.Second

type bashArgs struct {
	Command string    `json:"command"`
	Timeout flexFloat `json:"timeout"`
}

func (t *toolbox) bash(ctx context.Context, arguments string) Result {
	var a bashArgs
	if res := decodeArgs(ToolBash, arguments, &a, "command"); res != nil {
		return *res
	}
	if strings.TrimSpace(a.Command) == "" {
		return errorf("bash: command is empty")
	}
	return runBash(ctx, t.opts, t.box.real, a.Command, t.bashTimeout(a.Timeout))
}

// bashTimeout is min(requested or default, max).
func (t *toolbox) bashTimeout(req flexFloat) time.Duration {
	d := t.opts.BashTimeout
	if req.set && req.v > 0 {
		d = time.Duration(req.v * float64(time.Second))
	}
	return min(d, t.opts.BashMaxTimeout)
}

// runBash runs command in its own process group and always kills that
// group when bash ends, so background children cannot outlive the call.
func runBash(ctx context.Context, opts Options, dir, command string, timeout time.Duration) Result {
	cmd, lim, err := bashCommand(opts, dir, command)
	if err != nil {
		return errorf("bash: %v", err)
	}
	defer lim.done()
	pr, pw, err := os.Pipe()
	if err != nil {
		return errorf("bash: create output pipe: %v", err)
	}
	defer pr.Close()
	cmd.Stdout, cmd.Stderr = pw, pw // one pipe keeps stdout and stderr interleaved
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		pw.Close()
		return errorf("bash: could not start: %v", err)
	}
	pw.Close() // only the children hold the write end now
	release := guardGroup(cmd.Process.Pid)
	defer release()
	out := newHeadTail(opts.MaxOutputBytes)
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		_, _ = io.Copy(out, pr)
	}()
	reason := waitBash(ctx, cmd, timeout, opts)
	killGroup(cmd.Process.Pid)
	select {
	case <-copied:
	case <-time.After(outputDrainGrace):
		_ = pr.SetReadDeadline(time.Now()) // unblock the reader
		<-copied
	}
	res := bashResult(ctx, out.String(), cmd.ProcessState, reason, timeout)
	if lim.oomKilled() {
		res.Output = noteBeforeExit(res.Output, memoryKilledNote(opts.Sandbox.cfg.MemoryMaxBytes))
	}
	return res
}

// noteBeforeExit inserts a line before the final `exit code: N` line.
func noteBeforeExit(out, note string) string {
	i := strings.LastIndex(out, "exit code: ")
	if i < 0 {
		return out + "\n" + note
	}
	return out[:i] + note + "\n" + out[i:]
}

// bashCommand builds the command: inside the sandbox, or unconfined when
// tools.sandbox is off. A sandbox that failed its start-up check refuses.
func bashCommand(opts Options, dir, command string) (*exec.Cmd, callLimits, error) {
	sb := opts.Sandbox
	none := callLimits{done: func() {}, oomKilled: func() bool { return false }}
	if sb.cfg.Off {
		cmd := exec.Command("bash", "-c", command)
		cmd.Dir = dir
		cmd.Env = bashEnv(opts.Env)
		return cmd, none, nil
	}
	if err := sb.Err(); err != nil {
		return nil, none, err
	}
	argv, env, lim, err := sb.command(dir, command, bashEnv(opts.Env))
	if err != nil {
		return nil, none, fmt.Errorf("prepare sandbox: %w", err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = env
	return cmd, lim, nil
}

// guardGroup starts a watchdog in bash's process group that kills the group
// if this process dies: Pdeathsig reaches bash only, not its children, and a
// SIGKILLed worker cannot kill the group itself. The watchdog blocks reading
// a pipe whose only writer is this process, which the kernel closes however
// the process ends. It is best effort: without it only bash is guarded.
// release is called after killGroup, which has already killed the watchdog.
func guardGroup(pgid int) (release func()) {
	r, w, err := os.Pipe()
	if err != nil {
		return func() {}
	}
	defer r.Close()
	dog := exec.Command("sh", "-c", "cat >/dev/null; kill -KILL 0")
	dog.Stdin = r
	dog.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pgid: pgid}
	if err := dog.Start(); err != nil {
		w.Close()
		return func() {}
	}
	return func() {
		w.Close()
		_ = dog.Wait()
	}
}

// stopReason says why waitBash returned.
type stopReason int

const (
	stopExited stopReason = iota
	stopTimeout
	stopCancelled
)

// waitBash waits for bash to exit, heartbeating, and kills the process
// group on timeout or cancellation.
func waitBash(ctx context.Context, cmd *exec.Cmd, timeout time.Duration, opts Options) stopReason {
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	beat := time.NewTicker(opts.HeartbeatInterval)
	defer beat.Stop()
	for {
		select {
		case <-done:
			return stopExited
		case <-beat.C:
			if opts.Heartbeat != nil {
				opts.Heartbeat()
			}
		case <-timer.C:
			killGroup(cmd.Process.Pid)
			<-done
			return stopTimeout
		case <-ctx.Done():
			killGroup(cmd.Process.Pid)
			<-done
			return stopCancelled
		}
	}
}

// killGroup SIGKILLs the process group led by pid (bash).
func killGroup(pid int) {
	_ = syscall.Kill(-pid, syscall.SIGKILL)
}

// bashResult formats the output and the final `exit code: N` line.
func bashResult(ctx context.Context, output string, ps *os.ProcessState, reason stopReason, timeout time.Duration) Result {
	var b strings.Builder
	b.WriteString(output)
	if output != "" && !strings.HasSuffix(output, "\n") {
		b.WriteByte('\n')
	}
	switch reason {
	case stopTimeout:
		fmt.Fprintf(&b, "command timed out after %s and was killed with its child processes; pass a larger timeout (seconds) or run less at once\nexit code: %d", timeout, ExitTimeout)
		return Result{Output: b.String()}
	case stopCancelled:
		fmt.Fprintf(&b, "command was cancelled (%v) and killed with its child processes\nexit code: %d", context.Cause(ctx), ExitKilled)
		return Result{Output: b.String(), IsError: true}
	}
	code := ExitKilled
	if ps != nil {
		code = ps.ExitCode()
		if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			fmt.Fprintf(&b, "command was killed by signal %v\n", ws.Signal())
		}
	}
	fmt.Fprintf(&b, "exit code: %d", code)
	return Result{Output: b.String()}
}

// bashEnv never lets a nil Env fall through to exec's default of
// inheriting the worker's environment, which holds the API key.
func bashEnv(env []string) []string {
	if env == nil {
		env = os.Environ()
	}
	return SanitizeEnv(env)
}
