package demo

import (
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/sio-pso/siobroker"
)

// Services 52, 68, 76–84, 90, 91, 93: travel, post, migration, link analysis and finance.

func answerRailTickets(q query) []siobroker.Record {
	p := q.person
	if !p.hasTrait(traitTraveller) || p.hasTrait(traitForeigner) {
		return nil
	}
	trains := []struct{ number, route string }{
		{"№ 2Ц", "Астана — Алматы"}, {"№ 10Т", "Алматы — Астана"}, {"№ 81Х", "Петропавловск — Шымкент"},
		{"№ 1Т", "Астана — Алматы (Тальго)"}, {"№ 97Х", "Караганда — Актобе"},
	}
	var out []siobroker.Record
	for range 1 + q.r.IntN(3) {
		t := trains[q.r.IntN(len(trains))]
		out = append(out, rec("rail_ticket",
			"ticket_number", q.digits(14),
			"passenger_iin", p.IIN,
			"passenger_name", p.FullName(),
			"train", t.number,
			"route", t.route,
			"departure_time", timestamp(q.moment(AsOf.AddDate(-1, 0, 0), AsOf.AddDate(0, 1, 0))),
			"carriage", strconv.Itoa(1+q.r.IntN(18)),
			"seat", strconv.Itoa(1+q.r.IntN(54)),
			"fare", money(tenge(int64(6+q.r.IntN(30))*1000)),
			"currency", "KZT",
			"status", q.pick([]string{"использован", "использован", "возвращен"}),
		))
	}
	return out
}

func answerParcels(q query) []siobroker.Record {
	p := q.person
	if !p.hasTrait(traitParcels) {
		return nil
	}
	var out []siobroker.Record
	for range 1 + q.r.IntN(4) {
		kind, prefix := "заказное письмо", "RR"
		if q.r.IntN(2) == 0 {
			kind, prefix = "мелкий пакет", "LP"
		}
		from := cities[q.r.IntN(len(cities))].name
		out = append(out, rec("postal_item",
			"tracking_number", q.postalTracking(prefix),
			"item_kind", kind,
			"recipient_iin", p.IIN,
			"recipient_name", p.FullName(),
			"origin", from,
			"destination", p.Address.String(),
			"accepted_date", date(q.between(AsOf.AddDate(-1, 0, 0), AsOf)),
			"status", q.pick([]string{"вручено", "вручено", "ожидает в отделении"}),
		))
	}
	return out
}

func answerTemporaryRegistration(q query) []siobroker.Record {
	p := q.person
	if !p.hasTrait(traitForeigner) {
		return nil
	}
	from := q.between(AsOf.AddDate(0, -10, 0), AsOf.AddDate(0, -1, 0))
	purpose := "частная"
	if p.EmployerBIN != "" || p.hasTrait(traitHouseholdWorker) {
		purpose = "трудовая деятельность"
	}
	return []siobroker.Record{rec("temporary_registration",
		"iin", p.IIN,
		"full_name", p.FullName(),
		"citizenship", p.CitizenshipName,
		"passport_no", p.DocumentNo,
		"purpose", purpose,
		"host_iin", p.hostIIN,
		"host_name", q.d.nameOf(p.hostIIN),
		"address", p.Address.String(),
		"registered_from", date(from),
		"registered_to", date(from.AddDate(0, 0, 89)),
		"registered_by", "Управление миграционной службы ДП "+p.Address.Region,
	)}
}

func answerResidencePermit(q query) []siobroker.Record {
	p := q.person
	if !p.hasTrait(traitPermanentResident) {
		return nil
	}
	issued := q.between(AsOf.AddDate(-8, 0, 0), AsOf.AddDate(0, -2, 0))
	return []siobroker.Record{rec("residence_permit",
		"iin", p.IIN,
		"full_name", p.FullName(),
		"citizenship", p.CitizenshipName,
		"permit_number", "РВП-"+q.digits(9),
		"basis", q.pick([]string{"воссоединение семьи", "брак с гражданином РК", "трудовая деятельность по востребованной профессии"}),
		"issue_date", date(issued),
		"expiry_date", date(issued.AddDate(10, 0, 0)),
		"issued_by", "Управление миграционной службы ДП "+p.Address.Region,
	)}
}

func answerHouseholdWorkPermit(q query) []siobroker.Record {
	p := q.person
	if !p.hasTrait(traitHouseholdWorker) {
		return nil
	}
	issued := q.between(AsOf.AddDate(-1, 0, 0), AsOf.AddDate(0, -1, 0))
	return []siobroker.Record{rec("household_work_permit",
		"iin", p.IIN,
		"full_name", p.FullName(),
		"citizenship", p.CitizenshipName,
		"permit_number", "РТД-"+q.digits(9),
		"employer_iin", p.hostIIN,
		"employer_name", q.d.nameOf(p.hostIIN),
		"work_kind", q.pick([]string{"помощник по хозяйству", "няня", "водитель", "садовник"}),
		"issue_date", date(issued),
		"expiry_date", date(issued.AddDate(0, 3*(1+q.r.IntN(4)), 0)),
		"iit_prepaid", "да",
	)}
}

func answerEmigration(q query) []siobroker.Record {
	p := q.person
	if !p.hasTrait(traitEmigrating) {
		return nil
	}
	return []siobroker.Record{rec("emigration_application",
		"iin", p.IIN,
		"full_name", p.FullName(),
		"destination_country", q.pick([]string{"Германия", "Российская Федерация", "Канада", "Республика Корея"}),
		"application_date", date(q.between(AsOf.AddDate(-1, 0, 0), AsOf)),
		"accepted_by", "Управление миграционной службы ДП "+p.Address.Region,
		"status", q.pick([]string{"документы оформлены", "на рассмотрении"}),
	)}
}

// answerInvitations lists invitations a citizen made for the foreign nationals of the dataset, or
// the invitation a foreign national entered on.
func answerInvitations(q query) []siobroker.Record {
	invitation := func(guest, host Person) siobroker.Record {
		g := generator{r: q.d.serviceRand(80, "invitation:"+guest.IIN), d: q.d}
		issued := g.between(AsOf.AddDate(-2, 0, 0), AsOf.AddDate(0, -11, 0))
		return rec("invitation",
			"invitation_number", "ПР-"+g.digits(9),
			"inviter_iin", host.IIN,
			"inviter_name", host.FullName(),
			"guest_name", guest.LastName+" "+guest.FirstName,
			"guest_birth_date", date(guest.BirthDate),
			"guest_citizenship", guest.CitizenshipName,
			"guest_passport_no", guest.DocumentNo,
			"visa_kind", "частная (B10)",
			"issue_date", date(issued),
			"valid_until", date(issued.AddDate(0, 3, 0)),
		)
	}
	p := q.person
	if p.hasTrait(traitForeigner) {
		host, ok := q.d.Person(p.hostIIN)
		if !ok || p.Citizenship == "RUS" || p.Citizenship == "KGZ" || p.Citizenship == "UZB" {
			return nil // visa-free countries: no invitation needed
		}
		return []siobroker.Record{invitation(*p, host)}
	}
	var out []siobroker.Record
	for _, guest := range q.d.people {
		if guest.hasTrait(traitForeigner) && guest.hostIIN == p.IIN && guest.Citizenship != "RUS" && guest.Citizenship != "KGZ" && guest.Citizenship != "UZB" {
			out = append(out, invitation(guest, *p))
		}
	}
	return out
}

// answerCitizenship reports the admission to citizenship of ethnic Kazakh repatriates (қандастар).
func answerCitizenship(q query) []siobroker.Record {
	p := q.person
	if !p.hasTrait(traitKandas) {
		return nil
	}
	arrived, origin := q.d.repatriationOf(p)
	return []siobroker.Record{rec("citizenship_decision",
		"iin", p.IIN,
		"full_name", p.FullName(),
		"decision_kind", "прием в гражданство Республики Казахстан",
		"previous_citizenship", origin,
		"application_date", date(arrived.AddDate(0, 2, 0)),
		"decision_date", date(arrived.AddDate(0, 8, 0)),
		"procedure", "упрощенный (регистрационный) порядок",
	)}
}

// repatriationOf derives a repatriate's arrival date and country from the IIN, so that services 81
// and 84 agree.
func (d *Dataset) repatriationOf(p *Person) (time.Time, string) {
	g := generator{r: d.serviceRand(0, "kandas:"+p.IIN), d: d}
	return g.between(maxTime(p.BirthDate.AddDate(18, 0, 0), AsOf.AddDate(-15, 0, 0)), AsOf.AddDate(-1, 0, 0)),
		g.pick([]string{"Узбекистан", "Китай", "Монголия", "Туркменистан", "Российская Федерация"})
}

func answerKandas(q query) []siobroker.Record {
	p := q.person
	if !p.hasTrait(traitKandas) {
		return nil
	}
	arrived, origin := q.d.repatriationOf(p)
	return []siobroker.Record{rec("kandas_status",
		"iin", p.IIN,
		"full_name", p.FullName(),
		"country_of_origin", origin,
		"arrival_date", date(arrived),
		"status_assigned_date", date(arrived.AddDate(0, 1, 0)),
		"settlement_region", p.Address.Region,
		"regional_quota", q.pick([]string{"да", "нет"}),
		"status", "статус кандаса присвоен",
	)}
}

// link is one edge of the link analysis: a related subject and how it is related.
type link struct{ id, relation string }

// linksOf lists a subject's direct relations: family and household for a person, and the
// organisations it heads, founded or works for; head, founders and staff for an organisation.
func (d *Dataset) linksOf(id string) []link {
	var out []link
	if p, ok := d.Person(id); ok {
		for _, l := range []link{{p.SpouseIIN, "супруг(а)"}, {p.FatherIIN, "отец"}, {p.MotherIIN, "мать"}, {p.hostIIN, "принимающая сторона"}, {p.EmployerBIN, "работодатель"}} {
			if l.id != "" {
				out = append(out, l)
			}
		}
		for _, c := range d.people {
			switch {
			case c.FatherIIN == id || c.MotherIIN == id:
				out = append(out, link{c.IIN, "ребенок"})
			case c.hostIIN == id:
				out = append(out, link{c.IIN, "приглашенный иностранец"})
			}
		}
		for _, o := range d.orgs {
			if o.HeadIIN == id {
				out = append(out, link{o.BIN, "руководитель организации"})
			}
			if slices.Contains(o.FounderIINs, id) {
				out = append(out, link{o.BIN, "учредитель организации"})
			}
		}
		return out
	}
	o, ok := d.Organisation(id)
	if !ok {
		return nil
	}
	if o.HeadIIN != "" {
		out = append(out, link{o.HeadIIN, "руководитель"})
	}
	for _, f := range o.FounderIINs {
		out = append(out, link{f, "учредитель"})
	}
	for _, e := range d.employees[o.BIN] {
		out = append(out, link{e, "работник"})
	}
	return out
}

func (q query) linkRecord(level int, l link, via string) siobroker.Record {
	kind := "iin"
	if _, isOrg := q.d.Organisation(l.id); isOrg {
		kind = "bin"
	}
	return rec("relation",
		"level", strconv.Itoa(level),
		"subject_id", q.id(),
		"related_"+kind, l.id,
		"related_name", q.d.nameOf(l.id),
		"relation", l.relation,
		"via_id", via,
		"via_name", q.d.nameOf(via),
	)
}

func answerLinksLevel1(q query) []siobroker.Record {
	var out []siobroker.Record
	for _, l := range q.d.linksOf(q.id()) {
		out = append(out, q.linkRecord(1, l, ""))
	}
	return out
}

// answerLinksLevel2 lists the relations of the subject's relations that are not already direct
// relations, each once, with the relation it was reached through.
func answerLinksLevel2(q query) []siobroker.Record {
	first := q.d.linksOf(q.id())
	seen := map[string]bool{q.id(): true}
	for _, l := range first {
		seen[l.id] = true
	}
	var out []siobroker.Record
	for _, via := range first {
		for _, l := range q.d.linksOf(via.id) {
			if seen[l.id] {
				continue
			}
			seen[l.id] = true
			out = append(out, q.linkRecord(2, l, via.id))
		}
	}
	return out
}

func answerBankAccounts(q query) []siobroker.Record {
	if q.person != nil && !q.person.hasTrait(traitBanked) {
		return nil
	}
	var out []siobroker.Record
	for range 1 + q.r.IntN(3) {
		b := banks[q.r.IntN(len(banks))]
		currency := "KZT"
		balance := int64(q.r.IntN(3_000_000)) * 100
		if q.r.IntN(5) == 0 {
			currency, balance = "USD", int64(q.r.IntN(20_000))*100
		}
		if q.org != nil {
			balance *= 10
		}
		out = append(out, rec("bank_account", join(q.subjectFields(), []string{
			"bank_bic", b.bic,
			"bank_name", b.name,
			"iban", q.iban(b),
			"account_kind", q.pick([]string{"текущий", "сберегательный", "карточный"}),
			"currency", currency,
			"opened_date", date(q.between(AsOf.AddDate(-10, 0, 0), AsOf)),
			"balance", money(balance),
			"balance_date", date(AsOf),
		})...))
	}
	return out
}

func answerCreditHistory(q query) []siobroker.Record {
	if q.person != nil && !q.person.hasTrait(traitBorrower) {
		return nil
	}
	if q.org != nil && q.r.IntN(2) == 0 {
		return nil
	}
	kinds := []string{"потребительский заем", "ипотечный заем", "автокредит", "кредитная карта"}
	if q.org != nil {
		kinds = []string{"кредитная линия", "заем на пополнение оборотных средств"}
	}
	var out []siobroker.Record
	for range 1 + q.r.IntN(3) {
		start := q.between(AsOf.AddDate(-6, 0, 0), AsOf.AddDate(0, -1, 0))
		amount := int64(1+q.r.IntN(60)) * 100_000
		end := start.AddDate(1+q.r.IntN(10), 0, 0)
		outstanding, overdue, status := amount*int64(q.r.IntN(90))/100, 0, "действующий"
		switch {
		case q.isDebtor():
			overdue, status = 30+q.r.IntN(300), "просрочен"
		case end.Before(AsOf):
			outstanding, status = 0, "погашен"
		}
		out = append(out, rec("credit_contract", join(q.subjectFields(), []string{
			"creditor", banks[q.r.IntN(len(banks))].name,
			"contract_number", q.digits(10),
			"credit_kind", q.pick(kinds),
			"amount", money(tenge(amount)),
			"outstanding", money(tenge(outstanding)),
			"currency", "KZT",
			"start_date", date(start),
			"end_date", date(end),
			"overdue_days", strconv.Itoa(overdue),
			"status", status,
			"role", "заемщик",
		})...))
	}
	return out
}

func answerAirTickets(q query) []siobroker.Record {
	p := q.person
	if !p.hasTrait(traitTraveller) {
		return nil
	}
	carriers := []struct{ code, name string }{{"KC", "Air Astana"}, {"FS", "FlyArystan"}, {"DV", "SCAT"}}
	var out []siobroker.Record
	for range 1 + q.r.IntN(3) {
		c := carriers[q.r.IntN(len(carriers))]
		from := airports[q.r.IntN(5)] // domestic departure
		to := airports[q.r.IntN(len(airports))]
		if to == from {
			to = airports[(q.r.IntN(len(airports)-1)+1+indexOfAirport(from.iata))%len(airports)]
		}
		departure := q.moment(AsOf.AddDate(-1, 0, 0), AsOf.AddDate(0, 2, 0))
		status := "использован"
		if departure.After(AsOf) {
			status = q.pick([]string{"оформлен", "забронирован"})
		}
		out = append(out, rec("air_ticket",
			"ticket_number", fmt.Sprintf("%s%s", map[string]string{"KC": "465", "FS": "465", "DV": "949"}[c.code], q.digits(10)),
			"pnr", q.pnr(),
			"passenger_iin", p.IIN,
			"passenger_name", p.LastName+" "+p.FirstName,
			"document_no", p.DocumentNo,
			"carrier", c.name,
			"flight", c.code+" "+strconv.Itoa(100+q.r.IntN(900)),
			"from_airport", from.iata+" "+from.city,
			"to_airport", to.iata+" "+to.city,
			"departure_time", timestamp(departure),
			"status", status,
		))
	}
	return out
}

func indexOfAirport(iata string) int {
	for i, a := range airports {
		if a.iata == iata {
			return i
		}
	}
	return 0
}

// pnr is an airline booking reference: six letters and digits.
func (g *generator) pnr() string {
	const alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	b := make([]byte, 6)
	for i := range b {
		b[i] = alphabet[g.r.IntN(len(alphabet))]
	}
	return string(b)
}
