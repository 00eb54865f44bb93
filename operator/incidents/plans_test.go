package incidents_test

import (
	"strings"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/operator/incidents"
)

// TestShippedPlans: configs/emergencies.yaml has a plan for each of the six kinds of Appendix 7,
// every action with its maximum time and who is responsible, and says it is an example.
func TestShippedPlans(t *testing.T) {
	plans, err := incidents.LoadPlans("../../configs/emergencies.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !plans.Example {
		t.Error("the shipped plans are not marked as an example")
	}
	for _, kind := range siobroker.EmergencyKinds() {
		plan := plans.Plan(kind)
		if len(plan) == 0 {
			t.Errorf("no plan for %s", kind)
		}
		for i, a := range plan {
			if a.No != i+1 || a.Action == "" || a.Responsible == "" || a.Max <= 0 {
				t.Errorf("%s action %d: %+v", kind, i+1, a)
			}
		}
	}
	if plans.Plan(siobroker.EmergencyFireAlarm)[0].Max != 5*time.Minute {
		t.Errorf("fire-alarm action 1: %+v", plans.Plan(siobroker.EmergencyFireAlarm)[0])
	}
}

// TestPlansErrorsAtTheirLine: every mistake of a plans file is reported at the line of the kind or
// the action it is about, all of them at once.
func TestPlansErrorsAtTheirLine(t *testing.T) {
	const file = `plans:
  server-equipment:
    - action: Оценить повреждение
      max: 30m
      responsible: Администратор
  premises:
    - action: ""
      max: 30m
      responsible: Администратор
  fire-alarm:
    - action: Эвакуация
      max: soon
      responsible: Начальник смены
  air-conditioning:
    - action: Резервные кондиционеры
      max: 15m
  power-failure: []
  floods:
    - action: x
      max: 1m
      responsible: y
`
	_, err := incidents.ParsePlans("e.yaml", []byte(file))
	if err == nil {
		t.Fatal("a broken plans file was taken")
	}
	for _, want := range []string{
		"e.yaml:7: plans.premises[0]: action is required",
		`e.yaml:11: plans.fire-alarm[0]: max "soon" is not a duration`,
		"e.yaml:15: plans.air-conditioning[0]: responsible is required",
		"e.yaml:17: plans.power-failure: no actions",
		`e.yaml:18: plans: "floods" is not a kind of emergency of Appendix 7`,
		"plans: the plan of flooding (Действия в случае затопления) is missing",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the errors lack %q:\n%v", want, err)
		}
	}
	if _, err := incidents.ParsePlans("e.yaml", []byte("plans: {}\ncolour: red\n")); err == nil || !strings.Contains(err.Error(), "colour") {
		t.Errorf("an unknown key: %v", err)
	}
}
