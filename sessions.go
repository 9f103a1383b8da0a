package convo

// SessionsService starts Talqui sessions.
type SessionsService service
