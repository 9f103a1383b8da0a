package convo

import (
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The README names methods as `go doc` takes them, by their type
// (`ConversationsService.Open`, not `Conversations.Open`), and every
// service method it names exists.
func TestReadmeMethodNames(t *testing.T) {
	b, err := os.ReadFile("README.md")
	require.NoError(t, err)
	services := map[string]reflect.Type{
		"SessionsService":      reflect.TypeFor[*SessionsService](),
		"UsersService":         reflect.TypeFor[*UsersService](),
		"ConversationsService": reflect.TypeFor[*ConversationsService](),
		"SelartiService":       reflect.TypeFor[*SelartiService](),
	}
	span := regexp.MustCompile("`([^`]+)`")
	field := regexp.MustCompile(`^(Sessions|Users|Conversations|Selarti)\.[A-Z]`)
	method := regexp.MustCompile(`^(\w+Service)\.([A-Z]\w*)$`)
	fenced, named := false, 0
	for i, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "```") {
			fenced = !fenced
			continue
		}
		if fenced {
			continue
		}
		for _, m := range span.FindAllStringSubmatch(line, -1) {
			name := m[1]
			assert.False(t, field.MatchString(name), "README.md:%d: `%s`: name the type, as go doc takes it (%sService.…)", i+1, name, strings.Split(name, ".")[0])
			if mm := method.FindStringSubmatch(name); mm != nil {
				typ, ok := services[mm[1]]
				if assert.True(t, ok, "README.md:%d: `%s`: no such service", i+1, name) {
					_, ok := typ.MethodByName(mm[2])
					assert.True(t, ok, "README.md:%d: `%s`: no such method", i+1, name)
					named++
				}
			}
		}
	}
	assert.Greater(t, named, 20, "the README's method tables")
}
