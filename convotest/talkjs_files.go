package convotest

// This file holds TalkJS's file upload, POST /v1/{appId}/files: a
// multipart form with the file, answered with the attachment token a
// message then carries.

import (
	"bytes"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strings"
)

// File is a file uploaded to the fake TalkJS.
type File struct {
	// Token is the attachmentToken the upload answered.
	Token string
	// Filename is the form's filename field, or else the file part's own
	// file name.
	Filename string
	// ContentType is the Content-Type of the file part.
	ContentType string
	// Data is the file's content.
	Data []byte
}

// uploadFile is POST files: a multipart/form-data body with the file in
// the part named "file" and, optionally, its name in the field
// "filename", as TalkJS's official example (rest-api/add-gif-picker)
// sends it. It answers {"attachmentToken": "..."}, the token a message's
// attachmentToken then names. A body that is not such a form is a 400.
func (s *Server) uploadFile(c call) response {
	bad := func(msg string) response { return talkJSBadRequest(problemList{{"file", msg}}) }
	mt, params, err := mime.ParseMediaType(c.r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		return bad("the body must be multipart/form-data with a boundary")
	}
	mr := multipart.NewReader(bytes.NewReader(c.body), params["boundary"])
	var f *File
	var name string
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return bad("malformed multipart body: " + err.Error())
		}
		data, err := io.ReadAll(part)
		if err != nil {
			return bad("malformed multipart body: " + err.Error())
		}
		switch part.FormName() {
		case "file":
			if f != nil {
				return bad("only one file part is allowed")
			}
			f = &File{Filename: part.FileName(), ContentType: part.Header.Get("Content-Type"), Data: data}
		case "filename":
			name = string(data)
		default:
			return talkJSBadRequest(problemList{{part.FormName(), "is not a field of an upload"}})
		}
	}
	switch {
	case f == nil:
		return bad("is required: a part named file")
	case len(f.Data) == 0:
		return bad("is empty")
	}
	if strings.TrimSpace(name) != "" {
		f.Filename = name
	}
	f.Token = "att_" + randomBase62(24)
	s.talkjs.files[f.Token] = f
	s.stats.TalkJSFiles++
	return jsonResponse(http.StatusOK, map[string]string{"attachmentToken": f.Token})
}

// Files returns a copy of the files uploaded to the fake TalkJS, keyed by
// their attachment token.
func (s *Server) Files() map[string]File {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]File, len(s.talkjs.files))
	for k, f := range s.talkjs.files {
		c := *f
		c.Data = bytes.Clone(f.Data)
		out[k] = c
	}
	return out
}
