module github.com/convokit/convo/bench

go 1.24

require (
	github.com/convokit/convo v0.2.0
	github.com/go-resty/resty/v2 v2.17.2
)

require (
	github.com/google/go-querystring v1.2.0 // indirect
	github.com/hashicorp/go-cleanhttp v0.5.2 // indirect
	github.com/hashicorp/go-retryablehttp v0.7.8 // indirect
	github.com/nyaruka/phonenumbers v1.8.1 // indirect
	golang.org/x/net v0.43.0 // indirect
	golang.org/x/text v0.28.0 // indirect
	google.golang.org/protobuf v1.36.11 // indirect
)
