package adapters_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/adapters"
	"github.com/sio-pso/siobroker/schemas"
)

func TestArticleNumbers(t *testing.T) {
	for text, want := range map[string][]string{
		"":                        nil,
		"216":                     {"216"},
		"217-1":                   {"217-1"},
		" 216 ч.2 ":               {"216"},
		"ст. 216 ч. 2 п. 1)":      {"216"},
		"ч.2 ст.216":              {"216"},
		"ч.3 ст.217-1":            {"217-1"},
		"Статья 245":              {"245"},
		"СТ.190":                  {"190"},
		"ст.190 ч.2, ст.216; 245": {"190", "216", "245"},
		"article 216":             {"216"},
	} {
		got, err := adapters.ArticleNumbers(text)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%q: %v, %v; want %v", text, got, err, want)
		}
	}
	for _, bad := range []string{"мошенничество", "ч.2", "216, п.1", "2160"} {
		if got, err := adapters.ArticleNumbers(bad); err == nil {
			t.Errorf("%q: %v, want an error", bad, got)
		}
	}
}

func TestCaseAnswer(t *testing.T) {
	req := schemas.CaseCheckRequest{RequestID: "r-1", SignerIIN: "750312300458"}
	resp, err := adapters.CaseAnswer(req, true, siobroker.CaseFacts{Status: "  Open ", Articles: []string{"ч.2 ст.190", "216", "190 ч.1"},
		Participants: []siobroker.Participant{
			{IIN: "860421301550", Part: " Investigator"}, {IIN: "", Part: "group_member"}, // a LEFT JOIN's row of no one
			{IIN: "750312300458", Part: "Supervising  Prosecutor"}, {IIN: "860421301550", Part: "investigator"},
		}})
	if err != nil {
		t.Fatal(err)
	}
	want := schemas.CaseCheckResponse{RequestID: "r-1", Found: true, InProceedings: true, Status: "open", Articles: []string{"190", "216"},
		Participants: []siobroker.Participant{{IIN: "860421301550", Part: "investigator"}, {IIN: "750312300458", Part: "supervising prosecutor"}},
		Message:      resp.Message}
	if !reflect.DeepEqual(resp, want) || resp.Message == "" {
		t.Errorf("got  %+v\nwant %+v", resp, want)
	}
	resp, err = adapters.CaseAnswer(req, false, siobroker.CaseFacts{Status: "open", Participants: []siobroker.Participant{{IIN: "750312300458"}}})
	if err != nil || resp.Found || resp.InProceedings || resp.Status != "" || resp.Participants != nil {
		t.Errorf("not found: %+v, %v; a case not found carries no facts", resp, err)
	}
	_, err = adapters.CaseAnswer(req, true, siobroker.CaseFacts{Participants: []siobroker.Participant{{IIN: "75031230045", Part: "judge"}}})
	if err == nil || strings.Contains(err.Error(), "75031230045") {
		t.Errorf("a bad IIN: %v; want an error that does not quote it", err)
	}
}
