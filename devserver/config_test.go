package devserver

import (
	"testing"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/server/common/dynamicconfig"
)

func TestBuildDynamicConfig(t *testing.T) {
	transfer := dynamicconfig.TransferProcessorMaxPollRPS.Key()
	saRefresh := dynamicconfig.ForceSearchAttributesCacheRefreshOnRead.Key()
	partitions := dynamicconfig.MatchingNumTaskqueueReadPartitions.Key()
	fairness := dynamicconfig.MatchingEnableFairness.Key()
	autoEnable := dynamicconfig.MatchingAutoEnableV2.Key()
	tests := []struct {
		name string
		opts Options
		want map[dynamicconfig.Key]any // nil value: key must be absent
	}{
		{
			name: "tuned",
			want: map[dynamicconfig.Key]any{transfer: queuePollRPS, saRefresh: true, partitions: 1, fairness: true, autoEnable: false},
		},
		{
			name: "stock keeps only the CLI defaults",
			opts: Options{Stock: true},
			want: map[dynamicconfig.Key]any{transfer: nil, saRefresh: true, partitions: nil, fairness: true, autoEnable: false},
		},
		{
			name: "overrides win",
			opts: Options{DynamicConfig: map[string]any{"history.transferProcessorMaxPollRPS": 5, "matching.enableFairness": false}},
			want: map[dynamicconfig.Key]any{transfer: 5, saRefresh: true, fairness: false},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dc := buildDynamicConfig(tt.opts)
			for k, want := range tt.want {
				got, ok := dc[k]
				if want == nil {
					if ok {
						t.Errorf("%s = %v, want unset", k, got)
					}
					continue
				}
				if got != want {
					t.Errorf("%s = %v, want %v", k, got, want)
				}
			}
		})
	}
}

func TestSQLConfig(t *testing.T) {
	file, err := sqlConfig("state/temporal.db")
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"mode": "rwc", "journal_mode": "wal", "synchronous": "normal"} {
		if got := file.ConnectAttributes[k]; got != want {
			t.Errorf("file attribute %s = %q, want %q", k, got, want)
		}
	}
	a, _ := sqlConfig("")
	b, _ := sqlConfig("")
	if a.ConnectAttributes["mode"] != "memory" || a.DatabaseName == b.DatabaseName {
		t.Errorf("in-memory configs %q and %q must be memory mode with distinct names", a.DatabaseName, b.DatabaseName)
	}
}

func TestMissingSearchAttributes(t *testing.T) {
	kw, txt := enumspb.INDEXED_VALUE_TYPE_KEYWORD, enumspb.INDEXED_VALUE_TYPE_TEXT
	tests := []struct {
		name        string
		have, want  map[string]enumspb.IndexedValueType
		wantMissing int
		wantErr     bool
	}{
		{name: "all missing", want: map[string]enumspb.IndexedValueType{"A": kw, "B": txt}, wantMissing: 2},
		{name: "all present", have: map[string]enumspb.IndexedValueType{"A": kw}, want: map[string]enumspb.IndexedValueType{"A": kw}},
		{name: "type clash", have: map[string]enumspb.IndexedValueType{"A": txt}, want: map[string]enumspb.IndexedValueType{"A": kw}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			missing, err := missingSearchAttributes(tt.have, tt.want)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if len(missing) != tt.wantMissing {
				t.Errorf("missing = %v, want %d entries", missing, tt.wantMissing)
			}
		})
	}
}
