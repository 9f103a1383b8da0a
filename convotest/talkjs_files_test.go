package convotest_test

import (
	"bytes"
	"mime/multipart"
	"net/http"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// uploadForm is the form of TalkJS's official upload example
// (talkjs-examples, rest-api/add-gif-picker): the GIF in the part "file"
// and the field filename "Test".
func uploadForm(t *testing.T, fields map[string]string) ([]byte, string) {
	t.Helper()
	gif, err := os.ReadFile("testdata/talkjs-upload.gif")
	require.NoError(t, err)
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	fw, err := mw.CreateFormFile("file", "download.gif")
	require.NoError(t, err)
	_, err = fw.Write(gif)
	require.NoError(t, err)
	for k, v := range fields {
		require.NoError(t, mw.WriteField(k, v))
	}
	require.NoError(t, mw.Close())
	return b.Bytes(), mw.FormDataContentType()
}

func TestTalkJSUpload(t *testing.T) {
	srv := newServer(t)
	auth := "Bearer " + srv.SecretKey()
	form, ct := uploadForm(t, map[string]string{"filename": "Test"})
	a := call(t, srv, "POST", "/v1/"+srv.AppID()+"/files", string(form), "Authorization", auth, "Content-Type", ct)
	require.Equal(t, http.StatusOK, a.Status, "%s", a.Body)
	tok, _ := a.Object(t)["attachmentToken"].(string)
	require.NotEmpty(t, tok)
	files := srv.Files()
	require.Contains(t, files, tok)
	gif, _ := os.ReadFile("testdata/talkjs-upload.gif")
	assert.Equal(t, "Test", files[tok].Filename)
	assert.Equal(t, "application/octet-stream", files[tok].ContentType)
	assert.Equal(t, gif, files[tok].Data)
	assert.Equal(t, 1, srv.Stats().TalkJSFiles)

	// The token names the file in a message.
	putUser(t, srv, "alice", map[string]any{"name": "Alice"})
	require.Equal(t, http.StatusOK, talkjs(t, srv, "PUT", "/conversations/c1", map[string]any{"participants": []string{"alice"}}).Status)
	a = talkjs(t, srv, "POST", "/conversations/c1/messages", []map[string]any{{"attachmentToken": tok, "sender": "alice", "type": "UserMessage", "text": ""}})
	require.Equal(t, http.StatusOK, a.Status, "%s", a.Body)
	msgs := srv.Messages("c1")
	require.Len(t, msgs, 1)
	assert.Equal(t, map[string]any{"url": "https://convotest.invalid/files/" + tok + "/Test", "size": len(gif)}, msgs[0].Attachment)
	a = talkjs(t, srv, "POST", "/conversations/c1/messages", []map[string]any{{"attachmentToken": "att_nope", "sender": "alice", "type": "UserMessage", "text": ""}})
	assert.Equal(t, http.StatusBadRequest, a.Status)

	// Without filename, the file part's own name.
	form, ct = uploadForm(t, nil)
	a = call(t, srv, "POST", "/v1/"+srv.AppID()+"/files", string(form), "Authorization", auth, "Content-Type", ct)
	require.Equal(t, http.StatusOK, a.Status, "%s", a.Body)
	assert.Equal(t, "download.gif", srv.Files()[a.Object(t)["attachmentToken"].(string)].Filename)

	for name, tc := range map[string]struct{ body, ct string }{
		"JSON":          {`{"file": "x"}`, "application/json"},
		"no boundary":   {string(form), "multipart/form-data"},
		"no file part":  {"--b\r\nContent-Disposition: form-data; name=\"filename\"\r\n\r\nx\r\n--b--\r\n", "multipart/form-data; boundary=b"},
		"unknown field": {"--b\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\nx\r\n--b--\r\n", "multipart/form-data; boundary=b"},
		"cut short":     {"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\nxx", "multipart/form-data; boundary=b"},
	} {
		a := call(t, srv, "POST", "/v1/"+srv.AppID()+"/files", tc.body, "Authorization", auth, "Content-Type", tc.ct)
		assert.Equal(t, http.StatusBadRequest, a.Status, name)
	}
	assert.Equal(t, http.StatusUnauthorized, call(t, srv, "POST", "/v1/"+srv.AppID()+"/files", string(form), "Content-Type", ct).Status)
	assert.Equal(t, 2, srv.Stats().TalkJSFiles)
}
