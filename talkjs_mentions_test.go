package convo

import (
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
)

// Many mentions (past the few checked in the list itself) give the same
// answer: each id once, in the order of data.mentions then
// data.mentionedUserIds, without "".
func TestMentionedUsersMany(t *testing.T) {
	d := &MessageSentData{}
	var want []string
	for i := range 12 {
		id := "u" + strconv.Itoa(i)
		d.Mentions = append(d.Mentions, TalkJSMention{UserID: id}, TalkJSMention{UserID: id}, TalkJSMention{})
		want = append(want, id)
	}
	for i := 6; i < 18; i++ {
		id := "u" + strconv.Itoa(i)
		d.MentionedUserIDs = append(d.MentionedUserIDs, "", id)
		if i >= 12 {
			want = append(want, id)
		}
	}
	assert.Equal(t, want, d.MentionedUsers())
}

// BenchmarkMentionedUsers reads the mentions of a message.sent that names
// 20,000 distinct users in each of its two lists (a 1 MiB body holds
// about that many): the cost grows with the ids, not with their square.
func BenchmarkMentionedUsers(b *testing.B) {
	d := &MessageSentData{}
	for i := range 20_000 {
		id := "u" + strconv.Itoa(i)
		d.Mentions = append(d.Mentions, TalkJSMention{UserID: id})
		d.MentionedUserIDs = append(d.MentionedUserIDs, id, "v"+strconv.Itoa(i))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if n := len(d.MentionedUsers()); n != 40_000 {
			b.Fatalf("%d ids, want 40000", n)
		}
	}
}
