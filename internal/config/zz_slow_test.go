package config
import ("testing"; "time"; "strings")
func TestBomb(t *testing.T) {
	for _, in := range []string{
		"federation: &a {<<: [*a,*a,*a,*a,*a,*a,*a,*a]}\n",
		"federation:\n  peers: &p [" + strings.Repeat("*p,", 1000) + "*p]\n",
		"x: &c [" + strings.Repeat("a,", 1000) + "a]\nfederation:\n  peers: &p [" + strings.Repeat("{capabilities: *c},", 1000) + "{}]\nagents: [" + strings.Repeat("{capabilities: *c},", 1000) + "{}]\n",
	} {
		st := time.Now()
		_, err := parse([]byte(in), "x", env(nil))
		s := err.Error()
		t.Logf("%v %d %.300s", time.Since(st), len(s), s)
	}
}
