package convo

// UsersService manages TalkJS users.
type UsersService service
