package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/lambdad/lambdad/internal/server"
)

// eventsCmd reads a running server's dead-letter list (asynchronous events
// that failed with no destination) and replays an event on request.
func eventsCmd(args []string) error {
	fs := flag.NewFlagSet("events", flag.ExitOnError)
	endpoint := fs.String("endpoint", "http://"+server.Defaults.Listen, "the lambdad to talk to")
	asJSON := fs.Bool("json", false, "print the records as JSON")
	fs.Parse(args)
	client := &http.Client{Timeout: 30 * time.Second}
	switch fs.Arg(0) {
	case "", "list":
		var page struct {
			DeadLetters []struct {
				Seq    uint64
				At     time.Time
				Event  struct{ Function, Qualifier, RequestID string }
				Record json.RawMessage
			}
		}
		body, err := call(client, "GET", *endpoint+"/lambdad/events/dead-letters?limit=1000")
		if err != nil {
			return err
		}
		if *asJSON {
			os.Stdout.Write(body)
			fmt.Println()
			return nil
		}
		if err := json.Unmarshal(body, &page); err != nil {
			return err
		}
		w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "SEQ\tFAILED AT\tFUNCTION\tCONDITION\tREQUEST ID")
		for _, d := range page.DeadLetters {
			var rec struct {
				RequestContext struct{ Condition string }
			}
			json.Unmarshal(d.Record, &rec)
			fn := d.Event.Function
			if d.Event.Qualifier != "" {
				fn += ":" + d.Event.Qualifier
			}
			fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\n", d.Seq, d.At.UTC().Format(time.RFC3339), fn, rec.RequestContext.Condition, d.Event.RequestID)
		}
		return w.Flush()
	case "replay":
		seq, err := strconv.ParseUint(fs.Arg(1), 10, 64)
		if err != nil {
			return errors.New("usage: lambdad events replay SEQ")
		}
		body, err := call(client, "POST", *endpoint+"/lambdad/events/dead-letters/"+strconv.FormatUint(seq, 10)+"/replay")
		if err != nil {
			return err
		}
		fmt.Println(string(body))
		return nil
	default:
		return fmt.Errorf("events: unknown action %q (list or replay SEQ)", fs.Arg(0))
	}
}

func call(client *http.Client, method, url string) ([]byte, error) {
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s %s: %d %s", method, url, resp.StatusCode, body)
	}
	return body, nil
}
