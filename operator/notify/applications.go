package notify

import (
	"context"
	"fmt"
	"strings"

	"github.com/sio-pso/siobroker"
)

// applicationBatch bounds the events told in one NotifyApplications; the rest wait for the next.
const applicationBatch = 100

// applicationKinds are the App. 5 action types of the application kinds, as the form names them.
var applicationKinds = map[siobroker.ApplicationKind]string{
	siobroker.ApplyRegister: "регистрация",
	siobroker.ApplyMove:     "изменение прав (перевод)",
	siobroker.ApplyBlock:    "блокировка",
	siobroker.ApplyUnblock:  "разблокировка",
	siobroker.ApplyDelete:   "удаление",
}

// NotifyApplications writes the notices of the events of submitted applications (§12–15) not
// told yet: a submission to the operator, with the deadline of its decision (§13: "в течение
// суток"); a deadline passed undecided, to the operator again; a decision to the management of the
// applicant's organisation (§13: the role determined, or the motivated refusal). Each event is
// told once (the store marks it with its notices in one transaction), also when nobody is
// configured to hear of it. It returns the number of notices written.
func (n *Notifier) NotifyApplications(ctx context.Context) (int, error) {
	if n.cfg.Applications == nil {
		return 0, nil
	}
	due, err := n.cfg.Applications.ApplicationNoticesDue(ctx, n.clock.Now(), applicationBatch)
	if err != nil {
		return 0, fmt.Errorf("notify: %w", err)
	}
	written := 0
	for _, d := range due {
		kind, subject, body, to := n.applicationNotice(d)
		org := d.Application.Application.User.Organisation
		notes, _, err := n.cfg.Applications.EnqueueApplicationNotices(ctx, d.Application.ID, d.Event, n.clock.Now(),
			n.notices(kind, org, subject, body, to...))
		if err != nil {
			return written, fmt.Errorf("notify: application %d %s: %w", d.Application.ID, d.Event, err)
		}
		written += len(notes)
		if err := n.journalQueued(ctx, notes); err != nil {
			return written, err
		}
	}
	return written, nil
}

// applicationNotice is the notice of d: its kind, subject, body and recipients.
func (n *Notifier) applicationNotice(d siobroker.ApplicationNoticeDue) (kind, subject, body string, to []Contacts) {
	sa := d.Application
	a := sa.Application
	u := a.User
	action := applicationKinds[a.Kind]
	if action == "" {
		action = string(a.Kind)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Заявка № %d: %s\nПользователь: %s, ИИН %s\nОрганизация: %s\nПодразделение: %s\nДолжность: %s\n",
		sa.ID, action, u.FullName, a.IIN, u.Organisation, u.Department, u.Position)
	if a.Reason != "" {
		fmt.Fprintf(&b, "Основание: %s\n", a.Reason)
	}
	fmt.Fprintf(&b, "Поступила: %s (%s)\n", siobroker.FormatTime(a.At), a.By)
	if sa.Signed() {
		fmt.Fprintf(&b, "Подписана руководителем: %s, ИИН %s\n", sa.FormSigner, sa.FormSignerIIN)
	}
	switch d.Event {
	case siobroker.ApplicationEventSubmitted:
		kind = siobroker.NoticeApplicationSubmitted
		subject = fmt.Sprintf("СИО ПСО: заявка № %d (%s, ИИН %s): решение до %s (п. 13 Правил)", sa.ID, action, a.IIN, siobroker.FormatTime(sa.Deadline))
		fmt.Fprintf(&b, "Срок решения: %s\n\nОператор в течение суток с момента поступления Заявки определяет роль пользователя либо направляет мотивированный отказ (п. 13 Правил).\n",
			siobroker.FormatTime(sa.Deadline))
		to = []Contacts{n.cfg.Recipients.Operator}
	case siobroker.ApplicationEventOverdue:
		kind = siobroker.NoticeApplicationOverdue
		subject = fmt.Sprintf("СИО ПСО: заявка № %d (%s, ИИН %s) не рассмотрена в срок (п. 13 Правил)", sa.ID, action, a.IIN)
		fmt.Fprintf(&b, "Срок решения: %s — истёк, решение не принято.\n", siobroker.FormatTime(sa.Deadline))
		to = []Contacts{n.cfg.Recipients.Operator}
	default:
		kind = siobroker.NoticeApplicationDecided
		if sa.Status == siobroker.SubmittedRefused {
			subject = fmt.Sprintf("СИО ПСО: заявка № %d (%s, ИИН %s) отклонена (п. 13 Правил)", sa.ID, action, a.IIN)
			fmt.Fprintf(&b, "Решение: отказ, %s (%s)\nМотивы отказа: %s\nОтказ подписан ЭЦП, ИИН %s.\n",
				siobroker.FormatTime(sa.DecidedAt), sa.DecidedBy, sa.RefusalReason, sa.RefusalSigner)
		} else {
			subject = fmt.Sprintf("СИО ПСО: заявка № %d (%s, ИИН %s) исполнена", sa.ID, action, a.IIN)
			fmt.Fprintf(&b, "Решение: исполнена, %s (%s)\n", siobroker.FormatTime(sa.DecidedAt), sa.DecidedBy)
		}
		to = []Contacts{n.cfg.Recipients.Organisations[u.Organisation]}
	}
	return kind, subject, b.String(), to
}
