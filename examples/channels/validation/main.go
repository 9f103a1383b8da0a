// Command validation shows how a session start that breaks its channel's
// rules is refused before anything is sent: a *convo.ValidationError lists
// every problem at once, each a Problem with the field and the rule.
//
//	go run ./examples/channels/validation
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/convokit/convo"
	"github.com/convokit/convo/convotest"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	err := run(ctx)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "validation:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	srv := convotest.NewServer()
	defer srv.Close()
	c, err := srv.Client()
	if err != nil {
		return err
	}

	// WhatsApp API Official needs an approved model, and a phone of 8 to
	// 15 digits.
	_, err = c.Sessions.Start(ctx, convo.WhatsAppOfficial{Phone: "+55 9999", Name: "Maria"})
	var ve *convo.ValidationError
	if !errors.As(err, &ve) {
		return fmt.Errorf("want a *convo.ValidationError, got %v", err)
	}
	fmt.Println("refused:", errors.Is(err, convo.ErrValidation))
	for _, p := range ve.Problems {
		fmt.Printf("  %s: %s\n", p.Field, p.Reason)
	}
	fmt.Println("requests sent:", len(srv.Requests()))
	return nil
}
