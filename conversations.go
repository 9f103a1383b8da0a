package convo

// ConversationsService manages TalkJS conversations, participants and messages.
type ConversationsService service
