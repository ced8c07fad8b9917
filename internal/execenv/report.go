// This file formats what lambdad itself writes to an invocation's log:
// START, END, REPORT and INIT_REPORT lines, the notes of a timeout, a
// runtime's exit or an abandoned invocation, and the error documents a
// caller receives for them, as AWS words each.

package execenv

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/lambdad/lambdad/internal/runtimeapi"
)

// initFailure builds the Result of an invocation whose Init failed and
// completes its log; exitLines adds AWS's two-line error note.
func (e *env) initFailure(id string, d time.Duration, errorType string, payload []byte, exitLines bool) *Result {
	res := &Result{
		Payload:       payload,
		FunctionError: "Unhandled",
		Duration:      d,
		ColdStart:     true,
	}
	e.appendLog(appendInitReport(nil, d, errorType))
	e.appendLog(appendStart(nil, id, e.spec.Version))
	var lines []byte
	if exitLines {
		if errorType == "Runtime.ExitError" {
			lines = exitLine(nil, id, e.exitReason())
		} else {
			var doc struct {
				ErrorMessage string `json:"errorMessage"`
			}
			json.Unmarshal(payload, &doc)
			lines = append(lines, doc.ErrorMessage+"\n"...)
		}
		lines = append(lines, errorType+"\n"...)
	}
	res.MaxMemoryUsedMB = e.peakMB()
	res.Log = e.finishLog(id, res, lines)
	return res
}

// finishLog appends lines, END and REPORT, and takes the log.
func (e *env) finishLog(id string, res *Result, lines []byte) []byte {
	res.BilledDuration = billed(res.Duration)
	tail := append(lines, "END RequestId: "...)
	tail = append(tail, id...)
	tail = append(tail, '\n')
	tail = appendReport(tail, id, res, e.spec.MemoryMB)
	e.logMu.Lock()
	e.markLocked(tail)
	e.out = append(e.out, tail...)
	e.logMu.Unlock()
	return e.takeLog()
}

func appendStart(b []byte, id, version string) []byte {
	b = append(b, "START RequestId: "...)
	b = append(b, id...)
	b = append(b, " Version: "...)
	b = append(b, version...)
	return append(b, '\n')
}

// appendReport writes AWS's REPORT line, fields tab-separated with a
// trailing tab.
func appendReport(b []byte, id string, res *Result, memoryMB int) []byte {
	b = append(b, "REPORT RequestId: "...)
	b = append(b, id...)
	b = append(b, "\tDuration: "...)
	b = strconv.AppendFloat(b, ms(res.Duration), 'f', 2, 64)
	b = append(b, " ms\tBilled Duration: "...)
	b = strconv.AppendInt(b, res.BilledDuration.Milliseconds(), 10)
	b = append(b, " ms\tMemory Size: "...)
	b = strconv.AppendInt(b, int64(memoryMB), 10)
	b = append(b, " MB\tMax Memory Used: "...)
	b = strconv.AppendInt(b, int64(res.MaxMemoryUsedMB), 10)
	b = append(b, " MB\t"...)
	if res.ColdStart && res.InitDuration > 0 {
		b = append(b, "Init Duration: "...)
		b = strconv.AppendFloat(b, ms(res.InitDuration), 'f', 2, 64)
		b = append(b, " ms\t"...)
	}
	return append(b, '\n')
}

// appendInitReport writes the INIT_REPORT line of a failed Init.
func appendInitReport(b []byte, d time.Duration, errorType string) []byte {
	return fmt.Appendf(b, "INIT_REPORT Init Duration: %.2f ms\tPhase: init\tStatus: error\tError Type: %s\n",
		ms(d), errorType)
}

// appendTimedOut writes the line AWS logs when an invocation times out,
// stamped with the time at (wall clock, like the log file's stamps).
func appendTimedOut(b []byte, at time.Time, id string, timeout time.Duration) []byte {
	return fmt.Appendf(b, "%s %s Task timed out after %.2f seconds\n",
		at.UTC().Format(logTimeLayout), id, timeout.Seconds())
}

// appendAbandoned notes an invocation whose caller gave up on it after the
// function received it.
func appendAbandoned(b []byte, id string, cause error) []byte {
	return fmt.Appendf(b, "RequestId: %s Error: invocation abandoned: %v\n", id, cause)
}

func exitLine(b []byte, id, reason string) []byte {
	if reason == "" {
		return append(b, "RequestId: "+id+" Error: Runtime exited without providing a reason\n"...)
	}
	return append(b, "RequestId: "+id+" Error: Runtime exited with error: "+reason+"\n"...)
}

func exitPayload(id, reason string) []byte {
	l := exitLine(nil, id, reason)
	return runtimeapi.ErrorPayload("Runtime.ExitError", string(l[:len(l)-1]))
}

func timeoutPayload(id string, d time.Duration) []byte {
	return runtimeapi.ErrorPayload("Sandbox.Timedout",
		fmt.Sprintf("RequestId: %s Error: Task timed out after %.2f seconds", id, d.Seconds()))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// billed rounds d up to the next millisecond, at least 1 ms.
func billed(d time.Duration) time.Duration {
	b := (d + time.Millisecond - 1).Truncate(time.Millisecond)
	return max(b, time.Millisecond)
}
