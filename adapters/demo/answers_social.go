package demo

import (
	"fmt"
	"strconv"
	"time"

	"github.com/sio-pso/siobroker"
)

// Services 11–15, 26, 64, 65, 69, 75, 89, 92: pensions, welfare, work, public services, health,
// education, military service and contacts.

// pensionRate is the share of the salary an employer withholds as the mandatory pension
// contribution (ОПВ).
const pensionRate = 10

// answerPensionContributions lists the last two years of monthly contributions by the person's
// employer. The amount is only in the field named "amount": the broker removes that field under
// the bases where Appendix 2 allows only the truncated service, so no other field may let the
// amount be worked out (no salary, no totals, no payment order sums).
func answerPensionContributions(q query) []siobroker.Record {
	p := q.person
	if p.EmployerBIN == "" {
		return nil
	}
	employer := q.d.nameOf(p.EmployerBIN)
	var out []siobroker.Record
	for _, month := range monthsBack(24) {
		if month.Before(p.HiredOn) {
			continue
		}
		paid := month.AddDate(0, 1, 14+q.r.IntN(11)) // due by the 25th of the next month
		out = append(out, rec("pension_contribution",
			"period", month.Format("2006-01"),
			"payer_bin", p.EmployerBIN,
			"payer_name", employer,
			"contribution_type", "ОПВ",
			"amount", money(tenge(p.monthlySalary*pensionRate/100)),
			"currency", "KZT",
			"payment_date", date(paid),
			"pension_fund", "АО «ЕНПФ»",
		))
	}
	return out
}

func answerDisability(q query) []siobroker.Record {
	p := q.person
	if !p.hasTrait(traitDisabled) {
		return nil
	}
	group := 1 + q.r.IntN(3)
	established := q.between(maxTime(p.BirthDate, AsOf.AddDate(-15, 0, 0)), AsOf.AddDate(0, -1, 0))
	reexam := date(established.AddDate(1+q.r.IntN(2), 0, 0))
	if group == 1 || q.r.IntN(3) == 0 {
		reexam = "бессрочно"
	}
	kind := fmt.Sprintf("%d группа", group)
	if age(p.BirthDate) < 18 {
		kind = "ребенок с инвалидностью"
	}
	return []siobroker.Record{rec("disability",
		"iin", p.IIN,
		"disability_group", kind,
		"cause", q.pick([]string{"общее заболевание", "трудовое увечье", "с детства"}),
		"established_date", date(established),
		"reexamination", reexam,
		"commission", "Отдел МСЭ "+p.Address.Region,
	)}
}

func answerSocialAid(q query) []siobroker.Record {
	p := q.person
	if !p.hasTrait(traitSocialAid) {
		return nil
	}
	kinds := []struct {
		name   string
		amount int64
	}{
		{"адресная социальная помощь", 18500},
		{"пособие многодетным семьям", 62400},
		{"пособие по уходу за ребенком с инвалидностью", 85960},
		{"единовременное пособие на рождение ребенка", 147680},
	}
	var out []siobroker.Record
	for range 1 + q.r.IntN(2) {
		k := kinds[q.r.IntN(len(kinds))]
		from := q.between(AsOf.AddDate(-2, 0, 0), AsOf.AddDate(0, -1, 0))
		out = append(out, rec("social_benefit",
			"iin", p.IIN,
			"benefit_kind", k.name,
			"assigned_date", date(from),
			"period_from", date(from),
			"period_to", date(from.AddDate(1, 0, -1)),
			"monthly_amount", money(tenge(k.amount)),
			"currency", "KZT",
			"assigning_body", "Отдел занятости и социальных программ г. "+p.Address.City,
			"status", "назначено",
		))
	}
	return out
}

func answerLabourMarket(q query) []siobroker.Record {
	p := q.person
	var out []siobroker.Record
	if p.EmployerBIN != "" {
		out = append(out, rec("employment_contract",
			"iin", p.IIN,
			"employer_bin", p.EmployerBIN,
			"employer_name", q.d.nameOf(p.EmployerBIN),
			"position", p.Position,
			"contract_no", strconv.Itoa(1+q.r.IntN(900))+"-ТД",
			"contract_type", q.pick([]string{"бессрочный", "на определенный срок"}),
			"start_date", date(p.HiredOn),
			"status", "действующий",
		))
	}
	if p.hasTrait(traitJobSeeker) {
		out = append(out, rec("job_seeker_registration",
			"iin", p.IIN,
			"employment_center", "Центр трудовой мобильности г. "+p.Address.City,
			"registration_date", date(q.between(AsOf.AddDate(0, -10, 0), AsOf)),
			"status", "безработный",
		))
	}
	return out
}

func answerPublicServices(q query) []siobroker.Record {
	p := q.person
	if !p.hasTrait(traitPublicServices) {
		return nil
	}
	services := []string{
		"Выдача справки о наличии либо отсутствии судимости",
		"Регистрация по месту жительства",
		"Выдача удостоверения личности",
		"Выдача справки об отсутствии (наличии) недвижимого имущества",
		"Регистрация транспортного средства",
		"Регистрация рождения ребенка",
	}
	if age(p.BirthDate) < 16 {
		services = services[5:]
	}
	var out []siobroker.Record
	when := q.between(AsOf.AddDate(-4, 0, 0), AsOf.AddDate(-1, 0, 0))
	for range 1 + q.r.IntN(4) {
		out = append(out, rec("public_service_request",
			"request_no", "002"+q.digits(9),
			"service_name", q.pick(services),
			"request_date", date(when),
			"office", "ЦОН г. "+p.Address.City,
			"channel", q.pick([]string{"ЦОН", "портал egov.kz"}),
			"status", "результат выдан",
		))
		when = when.AddDate(0, 0, 10+q.r.IntN(200))
		if !when.Before(AsOf) {
			break
		}
	}
	return out
}

func answerCivilServantStatus(q query) []siobroker.Record {
	p := q.person
	if !p.hasTrait(traitCivilServant) {
		return nil
	}
	return []siobroker.Record{rec("civil_servant",
		"iin", p.IIN,
		"full_name", p.FullName(),
		"organisation_bin", p.EmployerBIN,
		"organisation_name", q.d.nameOf(p.EmployerBIN),
		"position", p.Position,
		"category", "C-O-"+strconv.Itoa(3+q.r.IntN(3)),
		"appointed_date", date(p.HiredOn),
		"status", "состоит на государственной службе",
	)}
}

func answerCivilServiceCareer(q query) []siobroker.Record {
	p := q.person
	if !p.hasTrait(traitCivilServant) {
		return nil
	}
	out := []siobroker.Record{}
	start := p.HiredOn.AddDate(-2-q.r.IntN(6), 0, 0)
	if adultAt := p.BirthDate.AddDate(21, 0, 0); start.Before(adultAt) {
		start = adultAt
	}
	if start.Before(p.HiredOn) {
		out = append(out, rec("civil_service_record",
			"iin", p.IIN,
			"organisation_name", "ГУ «Аппарат акима "+cityGenitive(p.Address)+"»",
			"position", "ведущий специалист",
			"start_date", date(start),
			"end_date", date(p.HiredOn.AddDate(0, 0, -1)),
			"end_reason", "перевод",
		))
	}
	out = append(out, rec("civil_service_record",
		"iin", p.IIN,
		"organisation_bin", p.EmployerBIN,
		"organisation_name", q.d.nameOf(p.EmployerBIN),
		"position", p.Position,
		"start_date", date(p.HiredOn),
		"asset_declaration_filed", "да",
	))
	return out
}

func answerContacts(q query) []siobroker.Record {
	p := q.person
	if !adult(p) {
		return nil
	}
	out := []siobroker.Record{
		rec("contact", "iin", p.IIN, "contact_type", "адрес регистрации", "value", p.Address.String(), "source", "ГБД ФЛ", "updated_date", date(q.between(AsOf.AddDate(-3, 0, 0), AsOf))),
		rec("contact", "iin", p.IIN, "contact_type", "мобильный телефон", "value", p.Phone, "source", "БМГ", "updated_date", date(q.between(AsOf.AddDate(-3, 0, 0), AsOf))),
	}
	if p.hasTrait(traitLandline) {
		out = append(out, rec("contact", "iin", p.IIN, "contact_type", "стационарный телефон", "value", landlineNumber(q, p.Address), "source", "АО «Казахтелеком»"))
	}
	return out
}

// landlineNumber derives a subscriber's landline from the IIN or BIN rather than from the
// question's random source, because services 53 and 64 each have their own source and must show
// the same number.
func landlineNumber(q query, a Address) string {
	h := 0
	for _, c := range q.id() {
		h = (h*31 + int(c)) % 1_000_000
	}
	return fmt.Sprintf("+7 7%s %02d %02d %02d", a.regionCode, h/10000%100, h/100%100, h%100)
}

func answerStudies(q query) []siobroker.Record {
	p := q.person
	if !p.hasTrait(traitStudent) {
		return nil
	}
	enrolled := p.BirthDate.AddDate(17+q.r.IntN(2), 8-int(p.BirthDate.Month()), 1-p.BirthDate.Day())
	enrolled = time.Date(enrolled.Year(), time.September, 1, 0, 0, 0, 0, time.UTC)
	if !enrolled.Before(AsOf) {
		return nil
	}
	graduation := enrolled.AddDate(4, -3, 0)
	status, graduated, diploma := "обучается", "", ""
	if graduation.Before(AsOf) {
		status, graduated, diploma = "выпускник", date(graduation), "JB-B "+q.digits(7)
	}
	return []siobroker.Record{rec("education_record",
		"iin", p.IIN,
		"university", q.pick(universities),
		"speciality", q.pick(specialities),
		"study_form", "очная",
		"degree", "бакалавриат",
		"enrolment_date", date(enrolled),
		"status", status,
		"graduation_date", graduated,
		"diploma_no", diploma,
	)}
}

func answerDispensary(q query) []siobroker.Record {
	p := q.person
	if !p.hasTrait(traitDispensary) {
		return nil
	}
	diagnoses := []struct{ code, name string }{
		{"I10", "Эссенциальная (первичная) гипертензия"},
		{"E11", "Инсулиннезависимый сахарный диабет"},
		{"J45", "Астма"},
		{"I25", "Хроническая ишемическая болезнь сердца"},
	}
	d := diagnoses[q.r.IntN(len(diagnoses))]
	return []siobroker.Record{rec("dispensary_registration",
		"iin", p.IIN,
		"clinic", fmt.Sprintf("ГКП на ПХВ «Городская поликлиника №%d» г. %s", 1+q.r.IntN(30), p.Address.City),
		"icd10_code", d.code,
		"diagnosis", d.name,
		"registration_date", date(q.between(maxTime(p.BirthDate, AsOf.AddDate(-10, 0, 0)), AsOf)),
		"status", "состоит на учете",
	)}
}

// answerMilitaryRegistration covers male citizens of conscription and reserve age.
func answerMilitaryRegistration(q query) []siobroker.Record {
	p := q.person
	a := age(p.BirthDate)
	if p.Gender != Male || p.Citizenship != CitizenshipKZ || a < 17 || a > 50 {
		return nil
	}
	category, rank := "военнообязанный запаса", "рядовой"
	if a <= 27 {
		category = "призывник"
		rank = ""
	}
	return []siobroker.Record{rec("military_registration",
		"iin", p.IIN,
		"category", category,
		"military_office", "Управление по делам обороны г. "+p.Address.City,
		"rank", rank,
		"fitness_category", q.pick([]string{"А", "Б", "В"}),
		"registration_date", date(p.BirthDate.AddDate(17, 1, 0)),
	)}
}

func answerMobileCitizen(q query) []siobroker.Record {
	p := q.person
	if !p.hasTrait(traitMobileCitizen) {
		return nil
	}
	operators := map[string]string{"701": "Kcell", "702": "Kcell", "705": "Beeline", "707": "Tele2", "708": "Altel", "747": "Tele2", "771": "Beeline", "775": "Kcell", "777": "Beeline", "778": "Kcell"}
	return []siobroker.Record{rec("mobile_citizen",
		"iin", p.IIN,
		"phone", p.Phone,
		"operator", operators[p.Phone[3:6]],
		"registration_date", date(q.between(AsOf.AddDate(-6, 0, 0), AsOf)),
		"verified", "да",
	)}
}
