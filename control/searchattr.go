package control

import (
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
)

// SearchAttributeTypes are the run's search attributes and their index types:
// what the embedded server registers and `codeswarm` ensures on a cluster.
func SearchAttributeTypes() map[string]enumspb.IndexedValueType {
	return map[string]enumspb.IndexedValueType{
		SAStatus:        enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		SARepo:          enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		SATask:          enumspb.INDEXED_VALUE_TYPE_TEXT,
		SATokens:        enumspb.INDEXED_VALUE_TYPE_INT,
		SACostUSD:       enumspb.INDEXED_VALUE_TYPE_DOUBLE,
		SASubtasksDone:  enumspb.INDEXED_VALUE_TYPE_INT,
		SASubtasksTotal: enumspb.INDEXED_VALUE_TYPE_INT,
		SAHost:          enumspb.INDEXED_VALUE_TYPE_KEYWORD,
	}
}

// Typed keys of the search attributes, for workflows and clients.
var (
	SAStatusKey        = temporal.NewSearchAttributeKeyKeyword(SAStatus)
	SARepoKey          = temporal.NewSearchAttributeKeyKeyword(SARepo)
	SATaskKey          = temporal.NewSearchAttributeKeyString(SATask)
	SATokensKey        = temporal.NewSearchAttributeKeyInt64(SATokens)
	SACostUSDKey       = temporal.NewSearchAttributeKeyFloat64(SACostUSD)
	SASubtasksDoneKey  = temporal.NewSearchAttributeKeyInt64(SASubtasksDone)
	SASubtasksTotalKey = temporal.NewSearchAttributeKeyInt64(SASubtasksTotal)
	SAHostKey          = temporal.NewSearchAttributeKeyKeyword(SAHost)
)

// TaskExcerptLen is how much of the task CodeswarmTask holds.
const TaskExcerptLen = 200
