package main

import (
	"encoding/json"
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
// that failed with no destination) and replays an event on request; it also
// shows the server's event source mappings.
func eventsCmd(args []string) error {
	c := newCommand("events", "[flags] [list | replay SEQ | mappings]", `
list (the default) prints the failed asynchronous events a running server
keeps because they had no destination; replay SEQ sends one through the
queue again; mappings prints the event source mappings, their state and
what their pollers have done since the server started. --json prints the
server's records instead of a table (list, mappings) or a sentence
(replay).`)
	endpoint := c.String("endpoint", "http://"+server.Defaults.Listen, "the lambdad to talk to")
	asJSON := c.Bool("json", false, "print the server's JSON records")
	pos, err := c.parse(args)
	if err != nil {
		return err
	}
	action := "list"
	if len(pos) > 0 {
		action = pos[0]
	}
	client := &http.Client{Timeout: 30 * time.Second}
	switch action {
	case "list":
		if len(pos) > 1 {
			return c.usagef("list: unexpected argument %q", pos[1])
		}
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
		if len(pos) != 2 {
			return c.usagef("replay takes one SEQ (the number 'lambdad events list' shows), got %d arguments", len(pos)-1)
		}
		seq, err := strconv.ParseUint(pos[1], 10, 64)
		if err != nil {
			return c.usagef("replay: SEQ must be a number, not %q", pos[1])
		}
		body, err := call(client, "POST", *endpoint+"/lambdad/events/dead-letters/"+strconv.FormatUint(seq, 10)+"/replay")
		if err != nil {
			return err
		}
		if *asJSON {
			os.Stdout.Write(body)
			fmt.Println()
			return nil
		}
		var r struct {
			Replayed, Event uint64
			RequestID       string `json:"RequestId"`
		}
		if err := json.Unmarshal(body, &r); err != nil {
			return fmt.Errorf("replay: the server answered %q: %w", body, err)
		}
		fmt.Printf("replayed dead letter %d as event %d, request id %s\n", r.Replayed, r.Event, r.RequestID)
		return nil
	case "mappings":
		if len(pos) > 1 {
			return c.usagef("mappings: unexpected argument %q", pos[1])
		}
		return printMappings(client, *endpoint, *asJSON)
	default:
		return c.usagef("unknown action %q (list, replay SEQ or mappings)", action)
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
