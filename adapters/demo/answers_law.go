package demo

import (
	"fmt"
	"strconv"
	"time"

	"github.com/sio-pso/siobroker"
)

// Services 16–25, 27–34, 54–62, 85–88: criminal records, courts, enforcement, traffic, identity
// documents, civil registry, borders and searches.

// offence is a Criminal Code article with its wording, for convictions and searches.
type offence struct{ article, name string }

var offences = []offence{
	{"ст. 188 ч. 2 УК РК", "Кража"},
	{"ст. 190 ч. 2 УК РК", "Мошенничество"},
	{"ст. 189 ч. 2 УК РК", "Присвоение или растрата вверенного чужого имущества"},
	{"ст. 293 ч. 1 УК РК", "Хулиганство"},
	{"ст. 345 ч. 2 УК РК", "Нарушение правил дорожного движения, повлекшее по неосторожности причинение тяжкого вреда здоровью"},
	{"ст. 297 ч. 1 УК РК", "Незаконный оборот наркотических средств без цели сбыта"},
}

// conviction is derived from the person alone, so that services 16, 20, 22 and 85 tell the same
// story whatever random source each of them has.
type conviction struct {
	offence
	verdict   time.Time
	court     string
	years     int
	caseNo    string
	erdrNo    string
	custodial bool
}

func (d *Dataset) convictionOf(p *Person) (conviction, bool) {
	if !p.hasTrait(traitConvicted) {
		return conviction{}, false
	}
	g := generator{r: d.serviceRand(0, "conviction:"+p.IIN), d: d}
	verdict := g.between(maxTime(p.BirthDate.AddDate(18, 0, 0), AsOf.AddDate(-12, 0, 0)), AsOf.AddDate(0, -2, 0))
	c := conviction{
		offence: offences[g.r.IntN(len(offences))],
		verdict: verdict,
		court:   "Районный суд №" + strconv.Itoa(1+g.r.IntN(3)) + " г. " + p.Address.City,
		years:   1 + g.r.IntN(6),
		caseNo:  fmt.Sprintf("%s%s-%02d-1-%d/%d", p.Address.regionCode, g.digits(2), verdict.Year()%100, 1+g.r.IntN(9), 100+g.r.IntN(900)),
		erdrNo:  g.erdrNumber(verdict.Year() - 1),
	}
	c.custodial = g.r.IntN(2) == 0
	return c, true
}

func (c conviction) sentence() string {
	if c.custodial {
		return fmt.Sprintf("лишение свободы на срок %d г.", c.years)
	}
	return fmt.Sprintf("ограничение свободы на срок %d г.", c.years)
}

func (c conviction) end() time.Time { return c.verdict.AddDate(c.years, 0, 0) }

func answerSpecialRecords(q query) []siobroker.Record {
	c, ok := q.d.convictionOf(q.person)
	if !ok {
		return nil
	}
	status := "не погашена"
	if c.end().AddDate(3, 0, 0).Before(AsOf) {
		status = "погашена"
	}
	return []siobroker.Record{rec("criminal_record",
		"iin", q.person.IIN,
		"full_name", q.person.FullName(),
		"article", c.article,
		"offence", c.name,
		"verdict_date", date(c.verdict),
		"court", c.court,
		"sentence", c.sentence(),
		"conviction_status", status,
	)}
}

// answerStatisticalCards reports the registration cards of the person's criminal case, or of the
// search when the person is wanted.
func answerStatisticalCards(q query) []siobroker.Record {
	var out []siobroker.Record
	if c, ok := q.d.convictionOf(q.person); ok {
		out = append(out, rec("statistical_card",
			"erdr_number", c.erdrNo,
			"card_form", "форма 1.0 — регистрация уголовного правонарушения",
			"registration_date", date(c.verdict.AddDate(0, -4, 0)),
			"article", c.article,
			"body", policeDepartment(q.person.Address),
			"decision", "направлено в суд",
			"person_role", "подозреваемый",
		))
	}
	if q.person.hasTrait(traitWanted) {
		s := q.d.searchOf(q.person)
		out = append(out, rec("statistical_card",
			"erdr_number", s.erdrNo,
			"card_form", "форма 1.0 — регистрация уголовного правонарушения",
			"registration_date", date(s.started.AddDate(0, -1, 0)),
			"article", s.article,
			"body", s.initiator,
			"decision", "досудебное расследование приостановлено (п. 1 ч. 7 ст. 45 УПК)",
			"person_role", "подозреваемый",
		))
	}
	return out
}

// enforcement is an enforcement proceeding against a debtor, shared by services 18, 56, 58 and 60.
type enforcement struct {
	number, claimant, officer string
	started                   time.Time
	amount                    int64
}

func (d *Dataset) enforcementsOf(id string) []enforcement {
	g := generator{r: d.serviceRand(0, "enforcement:"+id), d: d}
	claimants := []string{"АО «Kaspi Bank»", "АО «Народный Банк Казахстана»", "ТОО «МФО «Шинхан Финанс»", "УГД по г. Астана", "ТОО «Астана-ЕРЦ»"}
	var out []enforcement
	for range 1 + g.r.IntN(3) {
		started := g.between(AsOf.AddDate(-4, 0, 0), AsOf.AddDate(0, 0, -20))
		out = append(out, enforcement{
			number:   fmt.Sprintf("%s%s-%s-%02d/%s", "02", g.digits(2), g.digits(4), started.Year()%100, g.digits(5)),
			claimant: g.pick(claimants),
			officer:  "ЧСИ " + g.official(),
			started:  started,
			amount:   int64(50+g.r.IntN(5000)) * 1000,
		})
	}
	return out
}

func (q query) isDebtor() bool {
	if q.person != nil {
		return q.person.hasTrait(traitDebtor)
	}
	return q.org.hasTrait(traitOrgDebtor)
}

func answerEnforcement(q query) []siobroker.Record {
	if !q.isDebtor() {
		return nil
	}
	var out []siobroker.Record
	for _, e := range q.d.enforcementsOf(q.id()) {
		out = append(out, rec("enforcement_proceeding", join([]string{
			"proceeding_number", e.number,
			"start_date", date(e.started),
			"enforcement_officer", e.officer,
			"claimant", e.claimant,
			"claim_subject", "взыскание задолженности",
			"amount_due", money(tenge(e.amount)),
			"currency", "KZT",
			"status", "на исполнении",
		}, q.subjectFields())...))
	}
	return out
}

func answerCourtCases(q query) []siobroker.Record {
	var out []siobroker.Record
	if q.person != nil {
		if c, ok := q.d.convictionOf(q.person); ok {
			out = append(out, rec("court_case",
				"case_number", c.caseNo,
				"court", c.court,
				"category", "уголовное",
				"participant_role", "подсудимый",
				"registration_date", date(c.verdict.AddDate(0, -2, 0)),
				"decision_date", date(c.verdict),
				"decision", "обвинительный приговор",
			))
		}
	}
	if q.isDebtor() {
		for _, e := range q.d.enforcementsOf(q.id()) {
			decided := e.started.AddDate(0, -2, 0)
			out = append(out, rec("court_case",
				"case_number", fmt.Sprintf("%s%s-%02d-2-%d/%s", q.home().regionCode, q.digits(2), decided.Year()%100, 1+q.r.IntN(9), q.digits(4)),
				"court", "Специализированный межрайонный экономический суд г. "+q.home().City,
				"category", "гражданское",
				"claimant", e.claimant,
				"participant_role", "ответчик",
				"registration_date", date(decided.AddDate(0, -1, 0)),
				"decision_date", date(decided),
				"decision", "иск удовлетворен",
			))
		}
	}
	return out
}

func answerCourtCards(q query) []siobroker.Record {
	c, ok := q.d.convictionOf(q.person)
	if !ok {
		return nil
	}
	return []siobroker.Record{rec("court_card",
		"card_form", "форма № 6 — статистическая карточка на подсудимого",
		"case_number", c.caseNo,
		"court", c.court,
		"iin", q.person.IIN,
		"full_name", q.person.FullName(),
		"article", c.article,
		"verdict_date", date(c.verdict),
		"verdict_effective_date", date(c.verdict.AddDate(0, 0, 15)),
		"sentence", c.sentence(),
	)}
}

func answerTrafficViolations(q query) []siobroker.Record {
	p := q.person
	if !p.hasTrait(traitTrafficOffender) {
		return nil
	}
	plate := ""
	if vs := q.d.vehicle[p.IIN]; len(vs) > 0 {
		plate = vs[0].plate
	}
	violations := []struct {
		article, name string
		fineMRP       int64
	}{
		{"ст. 592 ч. 1 КоАП", "Превышение скорости на 10–20 км/ч", 5},
		{"ст. 592 ч. 2 КоАП", "Превышение скорости на 20–40 км/ч", 10},
		{"ст. 597 ч. 1 КоАП", "Нарушение правил остановки или стоянки", 5},
		{"ст. 591 ч. 1 КоАП", "Проезд на запрещающий сигнал светофора", 10},
	}
	const mrp = 4325 // the monthly calculation index of 2026, tenge; fines are set in MRP
	var out []siobroker.Record
	for range 1 + q.r.IntN(4) {
		v := violations[q.r.IntN(len(violations))]
		when := q.moment(AsOf.AddDate(-2, 0, 0), AsOf)
		paid := "оплачен"
		if q.r.IntN(3) == 0 {
			paid = "не оплачен"
		}
		out = append(out, rec("traffic_violation",
			"resolution_no", "ЭК"+q.digits(10),
			"violation_time", timestamp(when),
			"article", v.article,
			"description", v.name,
			"plate_number", plate,
			"place", p.Address.City+", "+q.pick(streets),
			"fine_amount", money(tenge(v.fineMRP*mrp)),
			"currency", "KZT",
			"payment_status", paid,
		))
	}
	return out
}

func answerRequirements(q query) []siobroker.Record {
	c, ok := q.d.convictionOf(q.person)
	if !ok {
		return nil
	}
	return []siobroker.Record{
		rec("requirement", "form", "форма № 1 — о судимости", "erdr_number", c.erdrNo, "iin", q.person.IIN, "full_name", q.person.FullName(), "submitted_date", date(c.verdict.AddDate(0, 0, 20)), "body", c.court),
		rec("requirement", "form", "форма № 2 — о лице, совершившем уголовное правонарушение", "erdr_number", c.erdrNo, "iin", q.person.IIN, "full_name", q.person.FullName(), "submitted_date", date(c.verdict.AddDate(0, -3, 0)), "body", policeDepartment(q.person.Address)),
	}
}

func answerWantedVehicles(q query) []siobroker.Record {
	var out []siobroker.Record
	for _, v := range q.d.vehicle[q.id()] {
		if !v.wanted {
			continue
		}
		g := generator{r: q.d.serviceRand(0, "stolen:"+v.vin), d: q.d}
		since := g.between(AsOf.AddDate(-1, 0, 0), AsOf)
		out = append(out, rec("wanted_vehicle", join(v.fields(), []string{
			"color", v.color,
			"search_reason", "угон",
			"search_start_date", date(since),
			"initiator", policeDepartment(q.home()),
			"erdr_number", g.erdrNumber(since.Year()),
		}, q.ownerFields())...))
	}
	return out
}

func answerWantedWeapons(q query) []siobroker.Record {
	var out []siobroker.Record
	for _, w := range q.d.weapons[q.id()] {
		if !w.lost {
			continue
		}
		out = append(out, rec("wanted_weapon", join([]string{
			"weapon_kind", w.kind,
			"model", w.model,
			"serial_number", w.serial,
			"caliber", w.caliber,
			"search_reason", "утрата",
			"search_start_date", date(q.between(w.issued, AsOf)),
			"initiator", policeDepartment(q.home()),
		}, q.ownerFields())...))
	}
	return out
}

func answerRoadAccidents(q query) []siobroker.Record {
	p := q.person
	if !p.hasTrait(traitRoadAccident) {
		return nil
	}
	plate := ""
	if vs := q.d.vehicle[p.IIN]; len(vs) > 0 {
		plate = vs[0].plate
	}
	when := q.moment(AsOf.AddDate(-3, 0, 0), AsOf)
	return []siobroker.Record{rec("road_accident",
		"accident_number", "ДТП-"+q.digits(8),
		"accident_time", timestamp(when),
		"place", p.Address.City+", "+q.pick(streets),
		"accident_type", q.pick([]string{"столкновение", "наезд на препятствие", "наезд на пешехода"}),
		"participant_iin", p.IIN,
		"participant_role", "водитель",
		"plate_number", plate,
		"consequences", q.pick([]string{"без пострадавших", "легкий вред здоровью"}),
		"registered_by", policeDepartment(p.Address),
	)}
}

func answerPhoto(q query) []siobroker.Record {
	p := q.person
	if p.DocumentNo == "" || p.Citizenship != CitizenshipKZ {
		return nil
	}
	return []siobroker.Record{rec("photo",
		"iin", p.IIN,
		"document_no", p.DocumentNo,
		"capture_date", date(p.DocumentIssued.AddDate(0, 0, -10)),
		"image_format", "image/jpeg",
		"image_width", "413",
		"image_height", "531",
		"image_ref", "sdn://photo/"+p.IIN+"/"+p.DocumentIssued.Format("20060102")+".jpg",
	)}
}

func answerForm1(q query) []siobroker.Record {
	p := q.person
	if p.DocumentNo == "" || p.Citizenship != CitizenshipKZ {
		return nil
	}
	reason := "замена в связи с истечением срока действия"
	if age(p.BirthDate) < 27 {
		reason = "первичное получение"
	}
	return []siobroker.Record{rec("document_application_form1",
		"application_no", "Ф1-"+q.digits(10),
		"application_date", date(p.DocumentIssued.AddDate(0, 0, -10)),
		"iin", p.IIN,
		"last_name", p.LastName,
		"first_name", p.FirstName,
		"middle_name", p.MiddleName,
		"birth_date", date(p.BirthDate),
		"birth_place", p.BirthPlace,
		"nationality", nationality(p),
		"registration_address", p.Address.String(),
		"document_type", identityDocumentType(p),
		"reason", reason,
		"issued_document_no", p.DocumentNo,
		"issue_date", date(p.DocumentIssued),
		"issuer", "МВД РК",
	)}
}

func answerDriverLicence(q query) []siobroker.Record {
	p := q.person
	if !p.hasTrait(traitDriver) {
		return nil
	}
	issued := q.between(maxTime(p.BirthDate.AddDate(18, 0, 0), AsOf.AddDate(-10, 0, 0)), AsOf.AddDate(0, 0, -1))
	return []siobroker.Record{rec("driver_licence",
		"iin", p.IIN,
		"licence_no", q.pick([]string{"AN", "AM", "BA"})+q.digits(6),
		"categories", q.pick([]string{"B", "B, B1", "B, BE, C, C1", "A, B"}),
		"issue_date", date(issued),
		"expiry_date", date(issued.AddDate(10, 0, 0)),
		"issuer", "СпецЦОН г. "+p.Address.City,
		"status", "действительно",
	)}
}

func answerNotarialActs(q query) []siobroker.Record {
	if q.person != nil && !q.person.hasTrait(traitNotaryClient) {
		return nil
	}
	actions := []string{
		"доверенность на управление транспортным средством",
		"договор купли-продажи транспортного средства",
		"согласие на выезд несовершеннолетнего ребенка",
		"свидетельствование подлинности подписи",
		"договор купли-продажи недвижимого имущества",
	}
	if q.org != nil {
		actions = []string{"доверенность на представление интересов", "свидетельствование подлинности подписи на решении участника", "договор залога недвижимого имущества"}
	}
	var out []siobroker.Record
	for range 1 + q.r.IntN(3) {
		out = append(out, rec("notarial_act", join([]string{
			"registry_number", strconv.Itoa(100 + q.r.IntN(9000)),
			"act_date", date(q.between(AsOf.AddDate(-5, 0, 0), AsOf)),
			"action", q.pick(actions),
			"notary", "частный нотариус " + q.official(),
			"notarial_district", q.home().Region,
			"party_role", "заявитель",
		}, q.subjectFields())...))
	}
	return out
}

func answerAppeals(q query) []siobroker.Record {
	if q.person != nil && !q.person.hasTrait(traitAppellant) {
		return nil
	}
	if q.org != nil && q.r.IntN(4) != 0 {
		return nil
	}
	topics := []string{"заявление о мошенничестве", "жалоба на действия должностного лица", "заявление о краже имущества", "обращение о нарушении трудовых прав"}
	var out []siobroker.Record
	for range 1 + q.r.IntN(2) {
		out = append(out, rec("appeal", join([]string{
			"registration_number", "ЕРО-" + q.digits(9),
			"registration_date", date(q.between(AsOf.AddDate(-3, 0, 0), AsOf)),
			"body", policeDepartment(q.home()),
			"summary", q.pick(topics),
			"status", q.pick([]string{"рассмотрено", "зарегистрировано в ЕРДР", "на рассмотрении"}),
			"applicant_role", "заявитель",
		}, q.subjectFields())...))
	}
	return out
}

func answerCivilRegistry(q query) []siobroker.Record {
	p := q.person
	if p.Citizenship != CitizenshipKZ {
		return nil
	}
	out := []siobroker.Record{rec("civil_status_act",
		"act_type", "рождение",
		"act_number", strconv.Itoa(100+q.r.IntN(4000)),
		"act_date", date(p.BirthDate.AddDate(0, 0, 3+q.r.IntN(20))),
		"registry_office", "Отдел регистрации актов гражданского состояния "+p.BirthPlace[len("Казахстан, "):],
		"iin", p.IIN,
		"full_name", p.FullName(),
		"father_iin", p.FatherIIN,
		"father_name", q.d.nameOf(p.FatherIIN),
		"mother_iin", p.MotherIIN,
		"mother_name", q.d.nameOf(p.MotherIIN),
	)}
	if p.SpouseIIN != "" {
		// The marriage date must be the same when either spouse is asked, so it comes from the pair.
		first, second := p.IIN, p.SpouseIIN
		if second < first {
			first, second = second, first
		}
		g := generator{r: q.d.serviceRand(0, "marriage:"+first+second), d: q.d}
		spouse, _ := q.d.Person(p.SpouseIIN)
		younger := maxTime(p.BirthDate, spouse.BirthDate)
		out = append(out, rec("civil_status_act",
			"act_type", "заключение брака",
			"act_number", strconv.Itoa(100+g.r.IntN(4000)),
			"act_date", date(g.between(younger.AddDate(19, 0, 0), younger.AddDate(25, 0, 0))),
			"registry_office", "Отдел регистрации актов гражданского состояния г. "+p.Address.City,
			"iin", p.IIN,
			"full_name", p.FullName(),
			"spouse_iin", spouse.IIN,
			"spouse_name", spouse.FullName(),
		))
	}
	return out
}

func (q query) borderCrossings(document string) []siobroker.Record {
	var out []siobroker.Record
	when := q.moment(AsOf.AddDate(-2, 0, 0), AsOf.AddDate(0, -1, 0))
	for range 1 + q.r.IntN(3) {
		checkpoint := q.pick(borderCheckpoints)
		country := q.pick(countries)
		if q.person.Citizenship != CitizenshipKZ {
			country = q.person.CitizenshipName
		}
		back := when.AddDate(0, 0, 3+q.r.IntN(20))
		if !back.Before(AsOf) {
			break
		}
		for _, leg := range []struct {
			direction string
			at        time.Time
		}{{"выезд", when}, {"въезд", back.Add(time.Duration(q.r.IntN(600)) * time.Minute)}} {
			out = append(out, rec("border_crossing",
				"iin", q.person.IIN,
				"full_name", q.person.FullName(),
				"direction", leg.direction,
				"crossing_time", timestamp(leg.at),
				"checkpoint", checkpoint,
				"document_no", document,
				"country", country,
			))
		}
		when = back.AddDate(0, 1+q.r.IntN(5), 0)
		if !when.Before(AsOf) {
			break
		}
	}
	return out
}

func answerCitizenBorderCrossings(q query) []siobroker.Record {
	p := q.person
	if p.Citizenship != CitizenshipKZ || !p.hasTrait(traitTraveller) {
		return nil
	}
	return q.borderCrossings("N" + q.digits(8)) // the foreign-travel passport, not the identity card
}

func answerForeignerBorderCrossings(q query) []siobroker.Record {
	if q.person.Citizenship == CitizenshipKZ {
		return nil
	}
	return q.borderCrossings(q.person.DocumentNo)
}

// search is a person's wanted notice, shared by services 17, 54 and 87.
type search struct {
	offence
	caseNo, erdrNo, initiator string
	started                   time.Time
}

func (d *Dataset) searchOf(p *Person) search {
	g := generator{r: d.serviceRand(0, "search:"+p.IIN), d: d}
	started := g.between(AsOf.AddDate(-5, 0, 0), AsOf.AddDate(0, -1, 0))
	return search{
		offence:   offences[g.r.IntN(len(offences))],
		caseNo:    "РД-" + g.digits(9),
		erdrNo:    g.erdrNumber(started.Year()),
		initiator: policeDepartment(p.Address),
		started:   started,
	}
}

func answerWantedPerson(q query) []siobroker.Record {
	p := q.person
	if !p.hasTrait(traitWanted) {
		return nil
	}
	s := q.d.searchOf(p)
	return []siobroker.Record{rec("wanted_person",
		"iin", p.IIN,
		"full_name", p.FullName(),
		"birth_date", date(p.BirthDate),
		"search_case_number", s.caseNo,
		"search_category", "скрывающийся от органа уголовного преследования",
		"article", s.article,
		"erdr_number", s.erdrNo,
		"search_start_date", date(s.started),
		"initiator", s.initiator,
		"preventive_measure", "арест (заочно)",
	)}
}

func (d *Dataset) disappearanceOf(p *Person) (time.Time, string) {
	g := generator{r: d.serviceRand(0, "missing:"+p.IIN), d: d}
	return g.between(AsOf.AddDate(-3, 0, 0), AsOf.AddDate(0, 0, -3)), "РД-" + g.digits(9)
}

func answerMissingPerson(q query) []siobroker.Record {
	p := q.person
	if !p.hasTrait(traitMissing) {
		return nil
	}
	since, caseNo := q.d.disappearanceOf(p)
	return []siobroker.Record{rec("missing_person",
		"iin", p.IIN,
		"full_name", p.FullName(),
		"birth_date", date(p.BirthDate),
		"search_case_number", caseNo,
		"missing_since", date(since),
		"last_seen_place", p.Address.City+", "+q.pick(streets),
		"initiator", policeDepartment(p.Address),
		"applicant", "родственник",
	)}
}

func answerDebtor(q query) []siobroker.Record {
	if !q.isDebtor() {
		return nil
	}
	var total int64
	es := q.d.enforcementsOf(q.id())
	for _, e := range es {
		total += e.amount
	}
	travelBan := ""
	if q.person != nil {
		travelBan = "установлено временное ограничение на выезд"
	}
	return []siobroker.Record{rec("debtor", join(q.subjectFields(), []string{
		"proceedings_count", strconv.Itoa(len(es)),
		"total_debt", money(tenge(total)),
		"currency", "KZT",
		"restriction", travelBan,
		"register_entry_date", date(es[0].started.AddDate(0, 0, 5)),
	})...)}
}

func answerForeignWorkerOffences(q query) []siobroker.Record {
	p := q.person
	if !p.hasTrait(traitForeignWorkerOffence) {
		return nil
	}
	return []siobroker.Record{rec("foreign_worker_offence",
		"iin", p.IIN,
		"full_name", p.FullName(),
		"citizenship", p.CitizenshipName,
		"protocol_no", "МП-"+q.digits(8),
		"offence_date", date(q.between(AsOf.AddDate(-2, 0, 0), AsOf)),
		"article", "ст. 496 ч. 1 КоАП",
		"description", "Нарушение иностранцем правил трудовой деятельности",
		"penalty", "штраф",
		"body", "Управление миграционной службы ДП "+p.Address.Region,
	)}
}

func answerRealEstateArrests(q query) []siobroker.Record {
	var out []siobroker.Record
	es := q.d.enforcementsOf(q.id())
	for _, p := range q.d.estate[q.id()] {
		if !p.arrested {
			continue
		}
		e := es[0]
		out = append(out, rec("real_estate_arrest", join([]string{
			"cadastral_number", p.cadastral,
			"address", p.address.String(),
			"arrest_date", date(beforeAsOf(maxTime(e.started, p.registered).AddDate(0, 0, 10))),
			"imposed_by", e.officer,
			"basis", "постановление по исполнительному производству № " + e.number,
			"status", "действует",
		}, q.ownerFields())...))
	}
	return out
}

func answerParticipationBan(q query) []siobroker.Record {
	p := q.person
	if !p.hasTrait(traitDebtor) {
		return nil
	}
	e := q.d.enforcementsOf(p.IIN)[0]
	return []siobroker.Record{rec("participation_ban",
		"iin", p.IIN,
		"full_name", p.FullName(),
		"ban_kind", "запрет на регистрационные действия в качестве учредителя (участника) юридического лица",
		"imposed_date", date(e.started.AddDate(0, 0, 7)),
		"imposed_by", e.officer,
		"basis", "исполнительное производство № "+e.number,
		"status", "действует",
	)}
}

func answerVehicleArrests(q query) []siobroker.Record {
	var out []siobroker.Record
	for _, v := range q.d.vehicle[q.id()] {
		if !v.arrested {
			continue
		}
		e := q.d.enforcementsOf(q.id())[0]
		out = append(out, rec("vehicle_arrest", join(v.fields(), []string{
			"arrest_date", date(beforeAsOf(maxTime(e.started, v.registered).AddDate(0, 0, 12))),
			"restriction", "запрет на регистрационные действия",
			"imposed_by", e.officer,
			"basis", "исполнительное производство № " + e.number,
			"status", "действует",
		}, q.ownerFields())...))
	}
	return out
}

func answerExpulsion(q query) []siobroker.Record {
	p := q.person
	if !p.hasTrait(traitDeported) {
		return nil
	}
	decided := q.between(AsOf.AddDate(-2, 0, 0), AsOf.AddDate(0, -1, 0))
	return []siobroker.Record{rec("expulsion_control",
		"iin", p.IIN,
		"full_name", p.FullName(),
		"citizenship", p.CitizenshipName,
		"passport_no", p.DocumentNo,
		"decision", "выдворение за пределы Республики Казахстан",
		"decision_date", date(decided),
		"court", "Специализированный административный суд г. "+p.Address.City,
		"article", "ст. 517 ч. 2 КоАП",
		"entry_ban_until", date(decided.AddDate(5, 0, 0)),
		"execution_status", q.pick([]string{"исполнено", "контролируемый самостоятельный выезд"}),
	)}
}

func answerConvict(q query) []siobroker.Record {
	c, ok := q.d.convictionOf(q.person)
	if !ok {
		return nil
	}
	status := "освобожден по отбытии срока"
	if c.end().After(AsOf) {
		status = "отбывает наказание"
	}
	institution, regime := "учреждение ЕЦ-166/"+strconv.Itoa(1+q.r.IntN(20)), "средней безопасности"
	if !c.custodial {
		institution, regime = "служба пробации "+policeDepartment(q.person.Address), "пробационный контроль"
	}
	return []siobroker.Record{rec("convict",
		"iin", q.person.IIN,
		"full_name", q.person.FullName(),
		"article", c.article,
		"sentence", c.sentence(),
		"sentence_start_date", date(c.verdict.AddDate(0, 0, 15)),
		"sentence_end_date", date(c.end().AddDate(0, 0, 15)),
		"institution", institution,
		"regime", regime,
		"status", status,
	)}
}

func answerInterpolVehicles(q query) []siobroker.Record {
	var out []siobroker.Record
	for _, v := range q.d.vehicle[q.id()] {
		if !v.wanted {
			continue
		}
		g := generator{r: q.d.serviceRand(0, "stolen:"+v.vin), d: q.d}
		since := g.between(AsOf.AddDate(-1, 0, 0), AsOf)
		out = append(out, rec("interpol_vehicle", join(v.fields(), []string{
			"smv_record_id", "SMV-" + strconv.Itoa(since.Year()) + "-" + q.digits(7),
			"reporting_country", "Kazakhstan",
			"theft_date", date(since),
			"record_status", "активна",
		})...))
	}
	return out
}

func answerInterpolPersons(q query) []siobroker.Record {
	p := q.person
	var out []siobroker.Record
	if p.hasTrait(traitWanted) {
		s := q.d.searchOf(p)
		out = append(out, rec("interpol_notice",
			"notice_type", "красное уведомление",
			"notice_id", fmt.Sprintf("A-%d/%d", 1000+q.r.IntN(9000), s.started.Year()),
			"iin", p.IIN,
			"full_name", p.FullName(),
			"birth_date", date(p.BirthDate),
			"charge", s.name,
			"requesting_country", "Kazakhstan",
			"publication_date", date(s.started.AddDate(0, 2, 0)),
		))
	}
	if p.hasTrait(traitMissing) {
		since, _ := q.d.disappearanceOf(p)
		out = append(out, rec("interpol_notice",
			"notice_type", "желтое уведомление",
			"notice_id", fmt.Sprintf("Y-%d/%d", 1000+q.r.IntN(9000), since.Year()),
			"iin", p.IIN,
			"full_name", p.FullName(),
			"birth_date", date(p.BirthDate),
			"requesting_country", "Kazakhstan",
			"publication_date", date(since.AddDate(0, 0, 20)),
		))
	}
	return out
}

func answerInterpolDocuments(q query) []siobroker.Record {
	p := q.person
	if !p.hasTrait(traitLostDocument) {
		return nil
	}
	lost := q.between(maxTime(p.BirthDate.AddDate(16, 0, 0), AsOf.AddDate(-6, 0, 0)), p.DocumentIssued)
	return []siobroker.Record{rec("interpol_document",
		"document_type", q.pick([]string{"паспорт гражданина РК", "удостоверение личности гражданина РК"}),
		"document_no", q.pick([]string{"N", "0"})+q.digits(8),
		"holder_iin", p.IIN,
		"holder_name", p.FullName(),
		"status", q.pick([]string{"утерян", "похищен"}),
		"reported_date", date(lost),
		"reporting_country", "Kazakhstan",
	)}
}
