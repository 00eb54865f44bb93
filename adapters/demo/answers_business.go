package demo

import (
	"fmt"
	"strconv"
	"time"

	"github.com/sio-pso/siobroker"
)

// Services 35–51, 53, 63, 66, 67, 70–74: taxes, customs, licences, procurement, subsoil,
// inspections, budget and excise declarations.

func answerTaxpayer(q query) []siobroker.Record {
	if q.person != nil {
		p := q.person
		if !adult(p) {
			return nil
		}
		return []siobroker.Record{rec("taxpayer",
			"iin", p.IIN,
			"full_name", p.FullName(),
			"taxpayer_kind", "физическое лицо",
			"tax_office", taxOffice(p.Address),
			"registration_date", date(p.BirthDate.AddDate(18, 0, 0)),
			"status", "действующий",
		)}
	}
	o := q.org
	vat := "нет"
	if o.hasTrait(traitVATPayer) {
		vat = "да"
	}
	return []siobroker.Record{rec("taxpayer",
		"bin", o.BIN,
		"name", o.Name,
		"taxpayer_kind", "юридическое лицо",
		"tax_office", taxOffice(o.Address),
		"registration_date", date(o.RegisteredOn),
		"tax_regime", q.pick([]string{"общеустановленный", "упрощенная декларация"}),
		"vat_payer", vat,
		"status", "действующий",
	)}
}

func answerTaxDebt(q query) []siobroker.Record {
	type tax struct{ kbk, name string }
	var taxes []tax
	switch {
	case q.org != nil && q.org.hasTrait(traitTaxDebt):
		taxes = []tax{{"101110", "Корпоративный подоходный налог с юридических лиц"}, {"105101", "Налог на добавленную стоимость"}, {"103101", "Социальный налог"}}
	case q.person != nil && q.person.hasTrait(traitDebtor):
		taxes = []tax{{"104402", "Налог на транспортные средства с физических лиц"}, {"104102", "Налог на имущество физических лиц"}}
	default:
		return nil
	}
	var out []siobroker.Record
	for _, t := range taxes[:1+q.r.IntN(len(taxes))] {
		debt := int64(5+q.r.IntN(3000)) * 1000
		out = append(out, rec("tax_debt", join(q.subjectFields(), []string{
			"tax_office", taxOffice(q.home()),
			"kbk", t.kbk,
			"kbk_name", t.name,
			"principal", money(tenge(debt)),
			"penalty", money(tenge(debt / 12)),
			"currency", "KZT",
			"as_of_date", date(AsOf),
		})...))
	}
	return out
}

// otherOrgs picks up to n organisations other than o, deterministically from the question's
// random source, so that counterparties and customers are real generated entities.
func (q query) otherOrgs(n int, keep func(Organisation) bool) []Organisation {
	var out []Organisation
	if len(q.d.orgs) < 2 {
		return nil
	}
	start := q.r.IntN(len(q.d.orgs))
	for i := range len(q.d.orgs) {
		o := q.d.orgs[(start+i)%len(q.d.orgs)]
		if o.BIN == q.id() || (keep != nil && !keep(o)) {
			continue
		}
		out = append(out, o)
		if len(out) == n {
			break
		}
	}
	return out
}

func answerCounterChecks(q query) []siobroker.Record {
	if !q.org.hasTrait(traitCounterCheck) {
		return nil
	}
	var out []siobroker.Record
	for _, c := range q.otherOrgs(1+q.r.IntN(2), func(o Organisation) bool { return !o.hasTrait(traitStateBody) }) {
		out = append(out, rec("counter_check",
			"request_number", "ВП-"+q.digits(8),
			"request_date", date(q.between(AsOf.AddDate(-2, 0, 0), AsOf)),
			"initiator", taxOffice(c.Address),
			"checked_bin", q.org.BIN,
			"checked_name", q.org.Name,
			"counterparty_bin", c.BIN,
			"counterparty_name", c.Name,
			"result", q.pick([]string{"взаиморасчеты подтверждены", "взаиморасчеты не подтверждены", "налогоплательщик отсутствует по месту нахождения"}),
		))
	}
	return out
}

func answerVATRegistration(q query) []siobroker.Record {
	o := q.org
	if !o.hasTrait(traitVATPayer) {
		return nil
	}
	registered := o.RegisteredOn.AddDate(0, 1+q.r.IntN(24), 0)
	if registered.After(AsOf) {
		registered = o.RegisteredOn
	}
	return []siobroker.Record{rec("vat_registration",
		"bin", o.BIN,
		"name", o.Name,
		"certificate_series", o.Address.regionCode+q.digits(3),
		"certificate_number", q.digits(7),
		"registration_date", date(registered),
		"tax_office", taxOffice(o.Address),
		"status", "действующий",
	)}
}

func answerTaxReports(q query) []siobroker.Record {
	if q.person != nil {
		p := q.person
		if !adult(p) || p.Citizenship != CitizenshipKZ {
			return nil
		}
		return []siobroker.Record{rec("tax_report",
			"iin", p.IIN,
			"form", "270.00 — декларация о доходах и имуществе физического лица",
			"tax_period", strconv.Itoa(AsOf.Year()-2),
			"submission_date", date(time.Date(AsOf.Year()-1, time.September, 1+q.r.IntN(28), 0, 0, 0, 0, time.UTC)),
			"submission_kind", "очередная",
			"status", "принята",
		)}
	}
	var out []siobroker.Record
	for _, quarter := range []int{1, 2, 3} {
		submitted := time.Date(AsOf.Year()-1, time.Month(quarter*3+2), 10+q.r.IntN(5), 0, 0, 0, 0, time.UTC)
		out = append(out, rec("tax_report",
			"bin", q.org.BIN,
			"form", "200.00 — декларация по индивидуальному подоходному и социальному налогам",
			"tax_period", fmt.Sprintf("%d-Q%d", AsOf.Year()-1, quarter),
			"submission_date", date(submitted),
			"submission_kind", "очередная",
			"status", "принята",
		))
	}
	if q.org.hasTrait(traitVATPayer) {
		out = append(out, rec("tax_report",
			"bin", q.org.BIN,
			"form", "300.00 — декларация по налогу на добавленную стоимость",
			"tax_period", fmt.Sprintf("%d-Q3", AsOf.Year()-1),
			"submission_date", date(time.Date(AsOf.Year()-1, time.November, 14, 0, 0, 0, 0, time.UTC)),
			"submission_kind", "очередная",
			"status", "принята",
		))
	}
	return out
}

func answerCounterparties(q query) []siobroker.Record {
	if q.org.hasTrait(traitStateBody) {
		return nil
	}
	var out []siobroker.Record
	for _, c := range q.otherOrgs(2+q.r.IntN(4), func(o Organisation) bool { return !o.hasTrait(traitStateBody) }) {
		out = append(out, rec("counterparty",
			"bin", q.org.BIN,
			"counterparty_bin", c.BIN,
			"counterparty_name", c.Name,
			"relation", q.pick([]string{"поставщик", "покупатель"}),
			"period", strconv.Itoa(AsOf.Year()-1),
			"invoice_count", strconv.Itoa(1+q.r.IntN(60)),
			"turnover_with_vat", money(tenge(int64(1+q.r.IntN(500))*100_000)),
			"currency", "KZT",
		))
	}
	return out
}

func answerLicences(q query) []siobroker.Record {
	o := q.org
	if !o.hasTrait(traitLicensed) && o.traits&(traitHydrocarbons|traitSolidMinerals|traitEthanol|traitAlcoholProducer|traitAlcoholTrader|traitWeaponsHolder) == 0 {
		return nil
	}
	kind := "Изыскательская деятельность, II категория"
	switch {
	case o.hasTrait(traitEthanol), o.hasTrait(traitAlcoholProducer):
		kind = "Производство алкогольной продукции"
	case o.hasTrait(traitAlcoholTrader):
		kind = "Хранение и оптовая реализация алкогольной продукции"
	case o.hasTrait(traitWeaponsHolder):
		kind = "Охранная деятельность"
	case o.hasTrait(traitHydrocarbons), o.hasTrait(traitSolidMinerals):
		kind = "Деятельность в сфере промышленной безопасности"
	case o.OKED == "41201":
		kind = "Строительно-монтажные работы, II категория"
	}
	return []siobroker.Record{rec("licence",
		"bin", o.BIN,
		"licensee", o.Name,
		"licence_number", strconv.Itoa(AsOf.Year()%100-q.r.IntN(8))+q.digits(6),
		"licence_kind", kind,
		"issue_date", date(q.between(o.RegisteredOn, AsOf)),
		"issuer", "Управление предпринимательства "+cityGenitive(o.Address),
		"validity", "бессрочная",
		"status", "действующая",
	)}
}

func answerProcurement(q query) []siobroker.Record {
	o := q.org
	if !o.hasTrait(traitProcurement) {
		return nil
	}
	customers := q.otherOrgs(1+q.r.IntN(3), func(c Organisation) bool { return c.hasTrait(traitStateBody) })
	var out []siobroker.Record
	for _, c := range customers {
		signed := q.between(AsOf.AddDate(-2, 0, 0), AsOf)
		out = append(out, rec("procurement_contract",
			"contract_number", fmt.Sprintf("%s%s/%d", c.BIN[:6], q.digits(4), signed.Year()),
			"supplier_bin", o.BIN,
			"supplier_name", o.Name,
			"customer_bin", c.BIN,
			"customer_name", c.Name,
			"procurement_method", q.pick([]string{"открытый конкурс", "запрос ценовых предложений", "электронный магазин"}),
			"subject", o.Activity,
			"contract_amount", money(tenge(int64(2+q.r.IntN(300))*500_000)),
			"currency", "KZT",
			"signed_date", date(signed),
			"status", q.pick([]string{"исполнен", "на исполнении"}),
		))
	}
	return out
}

func answerForeignTrade(q query) []siobroker.Record {
	o := q.org
	if !o.hasTrait(traitForeignTrade) && !o.hasTrait(traitHydrocarbons) {
		return nil
	}
	return []siobroker.Record{rec("foreign_trade_participant",
		"bin", o.BIN,
		"name", o.Name,
		"registration_number", "ВЭД-"+q.digits(8),
		"registration_date", date(q.between(o.RegisteredOn, AsOf)),
		"operation_kind", q.pick([]string{"импорт", "экспорт", "импорт и экспорт"}),
		"main_partner_country", q.pick(countries),
		"declarations_last_year", strconv.Itoa(1+q.r.IntN(200)),
		"customs_office", "ДГД по "+o.Address.Region,
	)}
}

func answerPassengerDeclarations(q query) []siobroker.Record {
	p := q.person
	if !p.hasTrait(traitCustomsDeclarant) {
		return nil
	}
	goods := []string{"наличные денежные средства свыше 10 000 долларов США", "ювелирные изделия", "товары для личного пользования сверх норм", "транспортное средство для личного пользования"}
	var out []siobroker.Record
	for range 1 + q.r.IntN(2) {
		out = append(out, rec("passenger_declaration",
			"declaration_number", "55"+q.digits(6)+"/"+q.digits(6)+"/"+q.digits(7),
			"declarant_iin", p.IIN,
			"declarant_name", p.FullName(),
			"declaration_date", date(q.between(AsOf.AddDate(-2, 0, 0), AsOf)),
			"checkpoint", q.pick(borderCheckpoints),
			"goods", q.pick(goods),
			"declared_value", money(tenge(int64(500+q.r.IntN(20000))*1000)),
			"currency", "KZT",
		))
	}
	return out
}

func answerVehicleDeclarations(q query) []siobroker.Record {
	var out []siobroker.Record
	for _, v := range q.d.vehicle[q.id()] {
		if !v.imported {
			continue
		}
		origin := map[byte]string{'J': "Япония", 'T': "Чехия", 'L': "Китай", 'X': "Российская Федерация", 'Y': "Российская Федерация"}[v.vin[0]]
		out = append(out, rec("vehicle_declaration", join([]string{
			"declaration_number", "55" + q.digits(6) + "/" + v.registered.AddDate(0, 0, -20).Format("020106") + "/" + q.digits(7),
			"declaration_date", date(v.registered.AddDate(0, 0, -20)),
		}, v.fields(), []string{
			"origin_country", origin,
			"customs_value", money(tenge(int64(3+q.r.IntN(40)) * 1_000_000)),
			"currency", "KZT",
		}, q.ownerFields())...))
	}
	return out
}

// answerForeignLabour gives a foreign worker's permit, or the permits of an employer's foreign
// workers, which are the foreign nationals of the dataset employed there.
func answerForeignLabour(q query) []siobroker.Record {
	permit := func(worker Person, employer Organisation) siobroker.Record {
		g := generator{r: q.d.serviceRand(46, "permit:"+worker.IIN), d: q.d}
		issued := g.between(maxTime(worker.HiredOn.AddDate(0, -1, 0), AsOf.AddDate(-1, 0, 0)), AsOf)
		return rec("foreign_worker_permit",
			"permit_number", "ИРС-"+g.digits(8),
			"employer_bin", employer.BIN,
			"employer_name", employer.Name,
			"worker_iin", worker.IIN,
			"worker_name", worker.FullName(),
			"worker_citizenship", worker.CitizenshipName,
			"position", worker.Position,
			"issue_date", date(issued),
			"expiry_date", date(issued.AddDate(1, 0, 0)),
			"issuer", "Управление занятости и социальных программ "+cityGenitive(employer.Address),
		)
	}
	if q.person != nil {
		p := q.person
		if !p.hasTrait(traitForeignWorker) {
			return nil
		}
		employer, _ := q.d.Organisation(p.EmployerBIN)
		return []siobroker.Record{permit(*p, employer)}
	}
	var out []siobroker.Record
	for _, iin := range q.d.employees[q.org.BIN] {
		if w, _ := q.d.Person(iin); w.hasTrait(traitForeignWorker) {
			out = append(out, permit(w, *q.org))
		}
	}
	return out
}

func answerMonopolist(q query) []siobroker.Record {
	o := q.org
	if !o.hasTrait(traitMonopolist) {
		return nil
	}
	return []siobroker.Record{rec("monopoly_register_entry",
		"bin", o.BIN,
		"name", o.Name,
		"register_section", "субъекты естественных монополий",
		"market", "передача электрической энергии",
		"territory", o.Address.Region,
		"inclusion_date", date(q.between(o.RegisteredOn, AsOf)),
		"regulator", "КРЕМ МНЭ РК",
	)}
}

func (q query) subsoilContract(numberSuffix, kind, mineral string, fields []string) []siobroker.Record {
	signed := q.between(q.org.RegisteredOn, AsOf.AddDate(-1, 0, 0))
	return []siobroker.Record{rec("subsoil_contract",
		"bin", q.org.BIN,
		"subsoil_user", q.org.Name,
		"contract_number", strconv.Itoa(1000+q.r.IntN(6000))+"-"+numberSuffix,
		"operation_kind", kind,
		"mineral", mineral,
		"deposit", q.pick(fields),
		"region", q.org.Address.Region,
		"signed_date", date(signed),
		"expiry_date", date(signed.AddDate(25, 0, 0)),
		"status", "действующий",
	)}
}

func answerHydrocarbonContracts(q query) []siobroker.Record {
	if !q.org.hasTrait(traitHydrocarbons) {
		return nil
	}
	return q.subsoilContract("УВС", "разведка и добыча", "углеводородное сырье", []string{"месторождение Восточный Каратал", "месторождение Южный Жайлау", "участок Северный Акжар"})
}

func answerSolidMineralContracts(q query) []siobroker.Record {
	if !q.org.hasTrait(traitSolidMinerals) {
		return nil
	}
	return q.subsoilContract("ТПИ", "добыча", q.pick([]string{"медные руды", "золото", "подземные воды"}), []string{"месторождение Сарыбулак", "участок Кызылтас", "месторождение Аксай-2"})
}

func answerInspections(q query) []siobroker.Record {
	o := q.org
	if !o.hasTrait(traitInspected) {
		return nil
	}
	bodies := []string{"Департамент государственных доходов", "Департамент санитарно-эпидемиологического контроля", "Департамент по чрезвычайным ситуациям", "Инспекция труда"}
	var out []siobroker.Record
	for range 1 + q.r.IntN(2) {
		start := q.between(AsOf.AddDate(-3, 0, 0), AsOf.AddDate(0, -1, 0))
		out = append(out, rec("inspection",
			"registration_number", "КПСиСУ-"+q.digits(10),
			"bin", o.BIN,
			"name", o.Name,
			"inspecting_body", q.pick(bodies)+" по "+o.Address.Region,
			"inspection_kind", q.pick([]string{"профилактический контроль с посещением", "внеплановая проверка"}),
			"start_date", date(start),
			"end_date", date(start.AddDate(0, 0, 5+q.r.IntN(20))),
			"result", q.pick([]string{"нарушения не выявлены", "выявлены нарушения, выдано предписание"}),
		))
	}
	return out
}

func answerBudgetReceipts(q query) []siobroker.Record {
	type payment struct {
		kbk, name string
		amount    int64
	}
	var payments []payment
	if q.person != nil {
		p := q.person
		if !adult(p) || p.Citizenship != CitizenshipKZ {
			return nil
		}
		if len(q.d.vehicle[p.IIN]) > 0 {
			payments = append(payments, payment{"104402", "Налог на транспортные средства с физических лиц", int64(8+q.r.IntN(80)) * 1000})
		}
		if len(q.d.estate[p.IIN]) > 0 {
			payments = append(payments, payment{"104102", "Налог на имущество физических лиц", int64(2+q.r.IntN(30)) * 1000})
		}
		if p.hasTrait(traitTrafficOffender) {
			payments = append(payments, payment{"204103", "Административные штрафы, налагаемые МВД", 21625})
		}
	} else {
		if q.org.hasTrait(traitStateBody) {
			return nil
		}
		payments = []payment{
			{"101110", "Корпоративный подоходный налог с юридических лиц", int64(1+q.r.IntN(900)) * 10_000},
			{"103101", "Социальный налог", int64(1+q.r.IntN(400)) * 10_000},
		}
		if q.org.hasTrait(traitVATPayer) {
			payments = append(payments, payment{"105101", "Налог на добавленную стоимость", int64(1+q.r.IntN(900)) * 10_000})
		}
	}
	var out []siobroker.Record
	for _, pm := range payments {
		out = append(out, rec("budget_payment", join(q.subjectFields(), []string{
			"payment_date", date(q.between(AsOf.AddDate(-1, 0, 0), AsOf)),
			"kbk", pm.kbk,
			"kbk_name", pm.name,
			"amount", money(tenge(pm.amount)),
			"currency", "KZT",
			"knp", "911",
			"payment_order", q.digits(6),
		})...))
	}
	return out
}

func answerLandline(q query) []siobroker.Record {
	if (q.person != nil && !q.person.hasTrait(traitLandline)) || (q.org != nil && !q.org.hasTrait(traitOrgLandline)) {
		return nil
	}
	services := "телефония, интернет"
	if q.r.IntN(3) == 0 {
		services = "телефония"
	}
	return []siobroker.Record{rec("telecom_subscriber", join(q.subjectFields(), []string{
		"contract_number", q.home().regionCode + q.digits(8),
		"phone", landlineNumber(q, q.home()),
		"installation_address", q.home().String(),
		"services", services,
		"connection_date", date(q.between(AsOf.AddDate(-15, 0, 0), AsOf)),
		"status", "активен",
	})...)}
}

func answerUnreliableSupplier(q query) []siobroker.Record {
	o := q.org
	if !o.hasTrait(traitUnreliableSupplier) {
		return nil
	}
	included := q.between(AsOf.AddDate(-2, 0, 0), AsOf)
	return []siobroker.Record{rec("unreliable_supplier",
		"bin", o.BIN,
		"name", o.Name,
		"head_iin", o.HeadIIN,
		"head_name", q.d.nameOf(o.HeadIIN),
		"basis", q.pick([]string{"неисполнение обязательств по договору о государственных закупках", "уклонение от заключения договора"}),
		"court_decision_date", date(included.AddDate(0, 0, -30)),
		"inclusion_date", date(included),
		"exclusion_date", date(included.AddDate(2, 0, 0)),
	)}
}

func answerRegistrationBan(q query) []siobroker.Record {
	o := q.org
	if !o.hasTrait(traitRegistrationBan) {
		return nil
	}
	return []siobroker.Record{rec("registration_ban",
		"bin", o.BIN,
		"name", o.Name,
		"ban_kind", q.pick([]string{"запрет на регистрационные действия", "запрет на перерегистрацию и ликвидацию"}),
		"imposed_date", date(q.between(AsOf.AddDate(-2, 0, 0), AsOf)),
		"imposed_by", q.pick([]string{"ЧСИ " + q.official(), taxOffice(o.Address), "Следственное управление ДП " + o.Address.Region}),
		"status", "действует",
	)}
}

func answerTechnicalInspections(q query) []siobroker.Record {
	var out []siobroker.Record
	for _, v := range q.d.vehicle[q.id()] {
		if AsOf.Year()-v.year < 3 {
			continue // new cars are exempt for the first years
		}
		passed := q.between(AsOf.AddDate(-1, 0, 0), AsOf)
		out = append(out, rec("technical_inspection", join(v.fields(), []string{
			"diagnostic_card", "ДК-" + q.digits(10),
			"inspection_date", date(passed),
			"operator", "ТОО «Центр техосмотра " + q.home().City + "»",
			"result", "пройден",
			"next_inspection_date", date(passed.AddDate(1, 0, 0)),
		}, q.ownerFields())...))
	}
	return out
}

func answerLandEncumbrances(q query) []siobroker.Record {
	var out []siobroker.Record
	for _, l := range q.d.land[q.id()] {
		if l.encumbrance == "" {
			continue
		}
		holder := "ЧСИ " + q.official()
		if l.encumbrance == "залог" {
			holder = banks[q.r.IntN(len(banks))].name
		}
		if l.encumbrance == "сервитут" {
			holder = "АО «KEGOC»"
		}
		out = append(out, rec("land_encumbrance", join([]string{
			"cadastral_number", l.cadastral,
			"address", l.address.String(),
			"encumbrance_kind", l.encumbrance,
			"holder", holder,
			"registration_date", date(q.between(l.registered, AsOf)),
			"status", "действует",
		}, q.ownerFields())...))
	}
	return out
}

// exciseDeclarations answers services 70–74: quarterly declarations of an excise business.
func (q query) exciseDeclarations(form, product, unit string, volume int) []siobroker.Record {
	var out []siobroker.Record
	for quarter := 1; quarter <= 4; quarter++ {
		out = append(out, rec("excise_declaration",
			"bin", q.org.BIN,
			"name", q.org.Name,
			"form", form,
			"tax_period", fmt.Sprintf("%d-Q%d", AsOf.Year()-1, quarter),
			"product", product,
			"volume", strconv.Itoa(volume/2+q.r.IntN(volume)),
			"unit", unit,
			"submission_date", date(time.Date(AsOf.Year()-1, time.Month(quarter*3), 10, 0, 0, 0, 0, time.UTC).AddDate(0, 1, q.r.IntN(5))),
			"status", "принята",
		))
	}
	return out
}

func answerEthanolDeclarations(q query) []siobroker.Record {
	if !q.org.hasTrait(traitEthanol) {
		return nil
	}
	return q.exciseDeclarations("декларация по производству и обороту этилового спирта", "спирт этиловый ректификованный", "дал", 20000)
}

func answerAlcoholProductionDeclarations(q query) []siobroker.Record {
	if !q.org.hasTrait(traitAlcoholProducer) && !q.org.hasTrait(traitEthanol) {
		return nil
	}
	return q.exciseDeclarations("декларация по производству и обороту алкогольной продукции", "вино столовое", "дал", 8000)
}

func answerAlcoholTradeDeclarations(q query) []siobroker.Record {
	if !q.org.hasTrait(traitAlcoholTrader) {
		return nil
	}
	return q.exciseDeclarations("декларация по обороту алкогольной продукции", "водка, коньяк, вино", "дал", 5000)
}

func answerFuelDeclarationsV2(q query) []siobroker.Record {
	if !q.org.hasTrait(traitFuelTrader) && !q.org.hasTrait(traitHydrocarbons) {
		return nil
	}
	return q.exciseDeclarations("декларация по нефтепродуктам (версия 2)", "бензин АИ-92, дизельное топливо", "т", 3000)
}

func answerFuelDeclarationsV3(q query) []siobroker.Record {
	if !q.org.hasTrait(traitFuelTrader) {
		return nil
	}
	return q.exciseDeclarations("декларация по нефтепродуктам (версия 3)", "бензин АИ-95, дизельное топливо", "т", 3000)
}
