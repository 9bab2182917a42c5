// Package control is the contract between a running codeswarm run and the
// programs that watch and steer it: the names of the parent and sub-agent
// workflows' updates and queries and their arguments and answers
// (control.go, share.go, progress.go), the run states, and the search
// attributes every run carries (searchattr.go). Another machine's CLI, the
// Web UI and scripts rely on these names and JSON shapes; renaming one
// breaks them and running histories.
package control
