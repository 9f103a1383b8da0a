// Package convotest is an in-memory fake of the Talqui, TalkJS and Selarti
// HTTP APIs, for testing code that uses a convo.Client, plus functions that
// deliver Selarti and TalkJS webhooks to a handler. Its Selarti AI closes
// the loop: each user's message sent to it is answered by an "All
// messages" webhook.
//
// The fake is an HTTP server on 127.0.0.1 that checks what the real APIs
// check and keeps state like they do: Talqui session starts need the
// plugin connection's token and follow each channel's rules; TalkJS
// upserts merge, messages get ids, idempotency keys are honoured and lists
// paginate. It does not share code with the SDK, so an SDK bug shows up
// against it as it would against the real API.
//
//	srv := convotest.NewServer()
//	t.Cleanup(srv.Close)
//	c, err := srv.Client() // a *convo.Client wired to srv
//	...
//	srv.Inject(convotest.Fault{Method: "POST", Path: "/v1/*", Status: 503, Times: 2})
//	// ... run the code under test with c ...
//	msgs := srv.Messages("order_391_fc")
//	n := srv.RequestCount("POST", "/v1/"+srv.AppID()+"/conversations/*")
//
// # Credentials
//
// The fake knows one Talqui tenant with its plugin connections and one
// TalkJS app with its secret key: the Default* constants, or those set
// with WithTenant, WithConnections and WithTalkJSApp. By default the
// tenant has one connection, which may start sessions on every channel,
// so a convo client may leave the connection id of a session start empty.
//
// # Talqui
//
// POST /tenants/{tenantID}/sessions answers 201 with {"contact",
// "session", "message"}. It checks, in order: the Authorization header
// is "PluginConnection <token>" (else 401); the tenant is the fake's
// (else 404); the token is a connection's (else 401); Content-Type is
// application/json (else 415); the body is a JSON object (else 400);
// pluginConnectionID names the token's connection (else 401); then the
// fields, every problem listed in one 400 {"message": "..."}:
// channel is a urn:talqui:<slug>:<n> URN; contactExternalID, messageKey
// ("text" only) and messageValue are present; known fields have their
// types; urn:talqui:whatsapp-cloud:0 needs campaignModelID and, like
// urn:talqui:whatsapp-internal:0, a contactExternalID of 8 to 15 digits
// and nothing else; campaignVariables, when sent, is an array. Unknown
// top-level fields are plugin fields: accepted and kept in
// TalquiSession.Extra. A contact is made once per channel and
// contactExternalID (a later start updates its name when one is sent); each
// start opens a new session. sessionKind defaults to "marketing" on
// WhatsApp Official and "transactional" elsewhere; sessionType to "auto";
// sessionChannel is the URN as sent.
//
// # TalkJS
//
// Under /v1/{appId}: users (PUT, GET, batch PUT of at most 100, list
// with isOnline, a user's conversations), presences (POST), conversations
// (PUT, GET, list, DELETE, POST notifications), participants (PUT, PATCH,
// DELETE), messages (POST 1 to 10, list, GET, PUT and DELETE one), and
// the import (POST import/conversations/{id}/messages, 1 to 10). The
// Authorization header must be "Bearer <secret key>" or a
// bearer app token (an HS256 JWT signed with the secret key, tokenType
// "app", iss the app id, exp in the future), else 401; an unknown app id
// is 404; a body must be sent as application/json (else 400); an unknown
// path is 404 and a wrong method 405. Choices where the API's documents
// are silent:
//   - A refused body answers 400 the way TalkJS does, the reasons of each
//     field: {"reasons": {"participants": ["\"ghost\" is not a user"]}};
//     a field of the n-th message of a send or import is named
//     messages[n].field. A body of the wrong JSON type, an unknown route
//     and the like answer {"message": "..."}.
//   - Fields not documented for a user upsert, conversation upsert,
//     participation or message send are a 400, so a misspelt field name
//     shows.
//   - A new user needs a name; name can never be erased. A null field is
//     erased; role erased goes back to "default". custom merges key by key:
//     a key sent as null is removed, custom: null removes all.
//   - Participants of a conversation PUT must be existing users (400).
//     PATCH on a user who is not a participant is 404; DELETE of one is
//     200 (idempotent).
//   - Lists take limit from 1 to 100 (default 10) and startingAfter, the
//     id of the last item of the previous page; an unknown id is a 400.
//     Users are listed in creation order, conversations by last activity
//     (latest first), messages newest first.
//   - idempotencyKey is scoped to the conversation; a key seen before
//     answers the first message's id and stores nothing. Deleting the
//     conversation forgets its keys.
//   - POST files takes a multipart/form-data upload, the file in the part
//     "file" and its name, optionally, in the field "filename" (as
//     TalkJS's official example sends it), and answers {"attachmentToken":
//     "..."} (see Files, Stats.TalkJSFiles). A message's attachmentToken
//     must be such a token (else 400); the message's attachment is then
//     {"url": ..., "size": bytes}.
//   - A message edit (PUT) must send text or custom; custom is patched
//     like a user's. A deleted message is gone: GET, PUT and DELETE of it
//     are 404.
//   - An import takes exactly the documented fields (text, sender,
//     timestamp, readBy, type; attachmentToken and custom optional), user
//     messages by participants only; readBy names participants. Imported
//     messages are stored at their timestamp with origin "import" and
//     never deduplicated; they count in Stats.TalkJSMessages and
//     Stats.TalkJSImported.
//   - A notification trigger needs channels ("email", "sms"); recipients,
//     when sent, are participants. Nothing is sent: it is counted in
//     Stats.TalkJSNotifications.
//   - Presence is what SetPresence set. A user is online while it has a
//     presence; POST /presences keeps a user when one widget matches every
//     widget filter sent (hasFocus, isTyping, selectedConversationId,
//     null meaning none selected), and a user with only background
//     sessions when includeBackgroundSessions is true and no widget filter
//     is sent.
//   - GET conversations takes filter, a JSON conversation filter in the
//     syntax of TalkJS's conversation list filters (the parameter as a
//     Node client of the REST API sends it): the fake applies custom
//     ("exists", "!exists", ["==" | "!=", value], ["oneOf" | "!oneOf",
//     [values]]), createdAt and lastMessageTs ([">" | "<" | ">=" | "<=",
//     n], ["between" | "!between", [from, to]]); anything else is a 400.
//   - POST conversations/{id}/readBy/{userId}, with no body (the PHP
//     client's markAsReadBy; TalkJS does not document it), adds the user
//     to readBy of every message it did not send and answers {}; a user
//     who is not a participant is 404.
//   - Lists answer "data": [] when empty, never null.
//
// # Selarti
//
// Under /api/1.1/wf (SelartiURL), the three workflows of Selarti's public
// API, answered in Bubble's envelopes: {"status": "success", "response":
// {...}} and, for an error, {"statusCode": 400, "body": {"status":
// "MISSING_DATA", "message": "..."}}.
//   - POST auth {"key": apiKey} answers {"status": "success", "response":
//     {"token": "..."}} (the client reads response.token); a key other than
//     the fake's is 401 UNAUTHORIZED. Tokens never expire unless
//     ExpireSelartiTokens is called.
//   - POST send_external_message {task, chat_id, text} and POST add_target
//     {task, target} need "Authorization: Bearer <token>" (else 401). Both
//     answer {"status": "success", "response": {}}. WithSelartiTokenError
//     changes the answer to a bad token: its status, and its body's shape,
//     Bubble's workflow error or Bubble's own {"error_class":
//     "Unauthorized", …, "translation": "Invalid or expired token: …"}
//     (BubbleErrorClass).
//   - Every body must be a JSON object sent as application/json (400);
//     the string parameters must be present and not blank (400
//     MISSING_DATA, every problem listed), the task one of the fake's (400
//     INVALID_DATA). add_target and auth refuse unknown keys; a send keeps
//     them in SelartiMessage.Extra, as plugin-defined keys.
//
// Choices where Selarti's documents are silent: the send's path and keys
// are the SDK's defaults (Selarti does not publish them), its answer is
// empty, and the dialog (thread_id) is one per chat_id. After answering a
// send, the fake's AI (WithSelartiAI, default DefaultSelartiAI) answers on
// a goroutine of its own, and the answer is posted to the URL given to
// SetSelartiWebhook as an "All messages" webhook: message_type "bot",
// external_chat_id the chat_id sent, a fresh message_id, the dialog's
// thread_id, every other key of Selarti's example. The user's message is
// posted first, as message_type "user", since Selarti's webhook carries
// every message of the dialog. ReplyAsOperator posts an
// operator's reply the same way. WaitSelartiReplies waits for the answers
// under way; SelartiMessages lists a dialog with each answer's delivery.
//
// # Recording, faults and counts
//
// Every request is recorded (Requests, RequestCount, ClearRequests).
// Inject queues faults: the next matching requests get a status (with
// Retry-After), a delay or a reset connection, either before the request
// is handled or after it was (see Fault). Stats counts what the fake
// actually did (sessions opened, messages stored, idempotent replays,
// messages the Selarti AI received and answered), so a test can prove that
// a send happened at most once.
package convotest
