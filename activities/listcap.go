package activities

// MaxListedPaths bounds the paths one activity result lists (a commit's
// changed files, a merge's changed or conflicting files). A sub-agent that
// commits a generated or vendored tree changes tens of thousands of files:
// listed whole, its commit's result, and the merge batch that lands it,
// would pass Temporal's 2 MB payload limit and fail on every retry. The
// first MaxListedPaths are listed (sorted, as git gives them) and the rest
// counted; the commit has them all.
const MaxListedPaths = 1000

// listPaths is paths cut to MaxListedPaths and how many were left out.
func listPaths(paths []string) ([]string, int) {
	if len(paths) <= MaxListedPaths {
		return paths, 0
	}
	return paths[:MaxListedPaths:MaxListedPaths], len(paths) - MaxListedPaths
}
