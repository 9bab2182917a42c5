package tools

import "strings"

// SanitizeEnv returns environ without credentials, for commands the model
// runs: OPENAI_API_KEY, CODESWARM_LLM_API_KEY, any variable whose name
// contains API_KEY, APIKEY, TOKEN, SECRET, PASSWORD, PASSWD, CREDENTIAL or
// PRIVATE_KEY (case-insensitive), and any variable whose value equals one
// of extraSecrets. Everything else (PATH, HOME, GOPATH, ...) is kept so the
// user's toolchains keep working.
func SanitizeEnv(environ []string, extraSecrets ...string) []string {
	out := make([]string, 0, len(environ))
	for _, kv := range environ {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || name == "" || isSecretName(name) || isSecretValue(value, extraSecrets) {
			continue
		}
		out = append(out, kv)
	}
	return out
}

func isSecretName(name string) bool {
	upper := strings.ToUpper(name)
	for _, part := range []string{"API_KEY", "APIKEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "PRIVATE_KEY"} {
		if strings.Contains(upper, part) {
			return true
		}
	}
	return false
}

func isSecretValue(value string, secrets []string) bool {
	for _, s := range secrets {
		if s != "" && value == s {
			return true
		}
	}
	return false
}
