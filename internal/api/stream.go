package api

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"hash/crc32"
	"net/http"

	"github.com/lambdad/lambdad/internal/awserr"
	"github.com/lambdad/lambdad/internal/invoke"
)

// invokeStream is InvokeWithResponseStream. The runtimes lambdad ships
// answer whole responses (none streams through the Runtime API), which is
// what AWS sends for a function that does not stream: the response as one
// PayloadChunk event, then InvokeComplete, in the event-stream framing the
// SDKs parse.
func (s *Server) invokeStream(c *call) (any, error) {
	if s.invoker == nil {
		return nil, awserr.New(awserr.ResourceNotReady, "Invocations are not enabled on this server.")
	}
	req := &invoke.Request{
		FunctionName: c.str("FunctionName"), Qualifier: c.str("Qualifier"), Type: c.str("InvocationType"),
		LogTail: c.str("LogType") == "Tail", ClientContext: c.str("ClientContext"), Payload: c.body, RequestID: c.requestID,
	}
	if req.Type == "" {
		req.Type = invoke.RequestResponse
	}
	res, err := s.invoker.Invoke(c.ctx(), req)
	if err != nil {
		if c.r.Context().Err() != nil {
			return nil, errClientGone
		}
		return nil, err
	}
	h := http.Header{}
	if res.ExecutedVersion != "" {
		h.Set("X-Amz-Executed-Version", res.ExecutedVersion)
	}
	if res.Status != http.StatusOK { // DryRun: no stream
		return &rawResult{status: res.Status, header: h}, nil
	}
	h.Set("Content-Type", "application/vnd.amazon.eventstream")
	var body bytes.Buffer
	complete := map[string]string{}
	if res.FunctionError != "" {
		complete["ErrorCode"], complete["ErrorDetails"] = res.FunctionError, string(res.Payload)
	} else {
		writeEvent(&body, "PayloadChunk", "application/octet-stream", res.Payload)
	}
	if res.LogResult != "" {
		complete["LogResult"] = res.LogResult
	}
	done, _ := json.Marshal(complete)
	writeEvent(&body, "InvokeComplete", "application/json", done)
	return &rawResult{status: http.StatusOK, header: h, body: body.Bytes()}, nil
}

// writeEvent appends one event-stream message: a prelude (total and
// header lengths, their CRC32), the string headers :event-type,
// :content-type and :message-type, the payload and the message's CRC32.
func writeEvent(w *bytes.Buffer, eventType, contentType string, payload []byte) {
	var headers bytes.Buffer
	for _, kv := range [][2]string{{":event-type", eventType}, {":content-type", contentType}, {":message-type", "event"}} {
		headers.WriteByte(byte(len(kv[0])))
		headers.WriteString(kv[0])
		headers.WriteByte(7) // string
		headers.Write(binary.BigEndian.AppendUint16(nil, uint16(len(kv[1]))))
		headers.WriteString(kv[1])
	}
	start := w.Len()
	total := 12 + headers.Len() + len(payload) + 4
	prelude := binary.BigEndian.AppendUint32(nil, uint32(total))
	prelude = binary.BigEndian.AppendUint32(prelude, uint32(headers.Len()))
	w.Write(prelude)
	w.Write(binary.BigEndian.AppendUint32(nil, crc32.ChecksumIEEE(prelude)))
	w.Write(headers.Bytes())
	w.Write(payload)
	w.Write(binary.BigEndian.AppendUint32(nil, crc32.ChecksumIEEE(w.Bytes()[start:])))
}
