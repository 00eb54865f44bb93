package demo

import (
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/sio-pso/siobroker"
)

// Services 1–10: the state registers of people, legal entities and property.

func nationality(p *Person) string {
	names := map[string][2]string{
		CitizenshipKZ: {"казах", "казашка"}, "UZB": {"узбек", "узбечка"}, "RUS": {"русский", "русская"},
		"KGZ": {"кыргыз", "кыргызка"}, "CHN": {"китаец", "китаянка"}, "TUR": {"турок", "турчанка"}, "TJK": {"таджик", "таджичка"},
	}
	n := names[p.Citizenship]
	if p.Gender == Female {
		return n[1]
	}
	return n[0]
}

func identityDocumentType(p *Person) string {
	if p.Citizenship == CitizenshipKZ {
		return "удостоверение личности гражданина РК"
	}
	return "национальный паспорт иностранного гражданина"
}

func answerIndividual(q query) []siobroker.Record {
	p := q.person
	out := []siobroker.Record{rec("person",
		"iin", p.IIN,
		"last_name", p.LastName,
		"first_name", p.FirstName,
		"middle_name", p.MiddleName,
		"birth_date", date(p.BirthDate),
		"gender", genderName(p.Gender),
		"nationality", nationality(p),
		"citizenship", p.CitizenshipName,
		"birth_place", p.BirthPlace,
		"registration_address", p.Address.String(),
		"registration_date", date(maxTime(p.BirthDate, AsOf.AddDate(-12, 0, 0)).AddDate(0, q.r.IntN(60), 0)),
		"life_status", "жив",
	)}
	if p.DocumentNo != "" {
		issuer := "МВД РК"
		if p.Citizenship != CitizenshipKZ {
			issuer = p.CitizenshipName
		}
		out = append(out, rec("identity_document",
			"document_type", identityDocumentType(p),
			"document_no", p.DocumentNo,
			"issue_date", date(p.DocumentIssued),
			"expiry_date", date(p.DocumentIssued.AddDate(10, 0, -1)),
			"issuer", issuer,
			"status", "действителен",
		))
	}
	return out
}

func (o Organisation) entityFields() []string {
	return []string{
		"bin", o.BIN,
		"full_name", o.Name,
		"legal_form", o.LegalForm,
		"registration_date", date(o.RegisteredOn),
		"status", "действующее",
		"oked", o.OKED,
		"activity", o.Activity,
		"legal_address", o.Address.String(),
	}
}

// answerLegalEntity gives the entity's card with its head and founders; asked about a person, it
// lists the entities the person heads or founded, as the register's search by IIN does.
func answerLegalEntity(q query) []siobroker.Record {
	if q.org != nil {
		o := q.org
		out := []siobroker.Record{rec("legal_entity", join(o.entityFields(),
			[]string{"head_iin", o.HeadIIN, "head_name", q.d.nameOf(o.HeadIIN), "phone", o.Phone})...)}
		for _, f := range o.FounderIINs {
			out = append(out, rec("founder", "founder_iin", f, "founder_name", q.d.nameOf(f), "share_percent", strconv.Itoa(100/len(o.FounderIINs))))
		}
		return out
	}
	var out []siobroker.Record
	for _, o := range q.d.orgs {
		role := ""
		switch {
		case o.HeadIIN == q.person.IIN:
			role = "руководитель"
		case slices.Contains(o.FounderIINs, q.person.IIN):
			role = "учредитель"
		default:
			continue
		}
		out = append(out, rec("legal_entity", join(o.entityFields(), []string{"role", role})...))
	}
	return out
}

func answerRealEstate(q query) []siobroker.Record {
	var out []siobroker.Record
	for _, p := range q.d.estate[q.id()] {
		encumbrance := "нет"
		if p.arrested {
			encumbrance = "арест"
		}
		rooms := ""
		if p.rooms > 0 {
			rooms = strconv.Itoa(p.rooms)
		}
		out = append(out, rec("real_estate", join([]string{
			"cadastral_number", p.cadastral,
			"object_type", p.kind,
			"address", p.address.String(),
			"total_area_m2", fmt.Sprintf("%.1f", p.areaM2),
			"rooms", rooms,
			"right_type", "собственность",
			"registration_date", date(p.registered),
			"basis_document", p.basis,
			"encumbrance", encumbrance,
		}, q.ownerFields())...))
	}
	return out
}

func answerLandPlots(q query) []siobroker.Record {
	var out []siobroker.Record
	for _, l := range q.d.land[q.id()] {
		out = append(out, rec("land_plot", join([]string{
			"cadastral_number", l.cadastral,
			"address", l.address.String(),
			"area_ha", fmt.Sprintf("%.4f", l.areaHa),
			"land_category", "земли населенных пунктов",
			"purpose", l.purpose,
			"right_type", l.right,
			"divisible", "делимый",
			"registration_date", date(l.registered),
		}, q.ownerFields())...))
	}
	return out
}

func (v vehicle) fields() []string {
	return []string{
		"plate_number", v.plate,
		"vin", v.vin,
		"make", v.model.make,
		"model", v.model.model,
		"year", strconv.Itoa(v.year),
	}
}

func answerVehicles(q query) []siobroker.Record {
	var out []siobroker.Record
	for _, v := range q.d.vehicle[q.id()] {
		out = append(out, rec("vehicle", join(v.fields(), []string{
			"body_type", v.model.body,
			"color", v.color,
			"engine_volume_cc", strconv.Itoa(v.engineCC),
			"registration_certificate", v.certificate,
			"registration_date", date(v.registered),
			"status", "на учете",
		}, q.ownerFields())...))
	}
	return out
}

// answerWeapons lists a person's registered weapons, or the service weapons of a security firm.
func answerWeapons(q query) []siobroker.Record {
	if q.org != nil {
		if !q.org.hasTrait(traitWeaponsHolder) {
			return nil
		}
		var out []siobroker.Record
		for range 2 + q.r.IntN(6) {
			out = append(out, rec("weapon", join([]string{
				"weapon_kind", "служебное короткоствольное",
				"model", "ПМ",
				"caliber", "9x18",
				"serial_number", "ТК" + q.digits(4),
				"permit_no", "ХР-" + q.digits(7),
				"permit_expiry_date", date(AsOf.AddDate(0, 1+q.r.IntN(30), 0)),
				"status", "зарегистрировано",
			}, q.ownerFields())...))
		}
		return out
	}
	var out []siobroker.Record
	for _, w := range q.d.weapons[q.id()] {
		status := "зарегистрировано"
		if w.lost {
			status = "утрачено"
		}
		out = append(out, rec("weapon", join([]string{
			"weapon_kind", w.kind,
			"model", w.model,
			"caliber", w.caliber,
			"serial_number", w.serial,
			"permit_no", w.permit,
			"permit_issue_date", date(w.issued),
			"permit_expiry_date", date(w.issued.AddDate(5, 0, 0)),
			"status", status,
		}, q.ownerFields())...))
	}
	return out
}

func answerRailcars(q query) []siobroker.Record {
	if !q.org.hasTrait(traitRailcars) && !q.org.hasTrait(traitHydrocarbons) {
		return nil
	}
	kinds := []string{"вагон-цистерна", "полувагон", "крытый вагон", "хоппер-зерновоз"}
	var out []siobroker.Record
	for range 3 + q.r.IntN(8) {
		out = append(out, rec("railcar", join([]string{
			"car_number", "5" + q.digits(7),
			"car_type", q.pick(kinds),
			"build_year", strconv.Itoa(AsOf.Year() - 2 - q.r.IntN(25)),
			"registration_date", date(q.between(q.org.RegisteredOn, AsOf)),
			"home_station", "ст. " + q.org.Address.City,
		}, q.ownerFields())...))
	}
	return out
}

func answerSmallBoats(q query) []siobroker.Record {
	if !q.person.hasTrait(traitSmallBoat) {
		return nil
	}
	models := []string{"Казанка-5М4", "Прогресс-4", "Обь-М", "Tuna 410"}
	return []siobroker.Record{rec("small_vessel", join([]string{
		"registration_number", "Р " + q.digits(2) + "-" + q.digits(2) + " " + q.home().regionCode,
		"model", q.pick(models),
		"build_year", strconv.Itoa(AsOf.Year() - 1 - q.r.IntN(30)),
		"hull_material", "алюминиевый сплав",
		"engine", fmt.Sprintf("подвесной мотор, %d л.с.", 15+5*q.r.IntN(10)),
		"home_water_body", q.pick([]string{"р. Иртыш", "р. Есиль", "оз. Балхаш", "Капшагайское вдхр.", "р. Урал"}),
		"registration_date", date(q.between(AsOf.AddDate(-10, 0, 0), AsOf)),
	}, q.ownerFields())...)}
}

func answerSeaVessels(q query) []siobroker.Record {
	if !q.org.hasTrait(traitSeaVessels) && !q.org.hasTrait(traitFuelTrader) {
		return nil
	}
	names := []string{"Актау", "Каспий", "Мангыстау", "Тениз", "Кашаган", "Жайык"}
	var out []siobroker.Record
	for i := range 1 + q.r.IntN(2) {
		built := AsOf.Year() - 3 - q.r.IntN(25)
		out = append(out, rec("sea_vessel", join([]string{
			"imo_number", q.imoNumber(),
			"vessel_name", q.pick(names) + "-" + strconv.Itoa(i+1),
			"vessel_type", q.pick([]string{"нефтеналивное судно", "буксир", "сухогруз"}),
			"flag", "Республика Казахстан",
			"home_port", "Актау",
			"gross_tonnage", strconv.Itoa(400 + q.r.IntN(7000)),
			"build_year", strconv.Itoa(built),
			"registration_date", date(q.between(maxTime(q.org.RegisteredOn, time.Date(built, 6, 1, 0, 0, 0, 0, time.UTC)), AsOf)),
		}, q.ownerFields())...))
	}
	return out
}

func answerFarmMachinery(q query) []siobroker.Record {
	if (q.person != nil && !q.person.hasTrait(traitFarmMachinery)) || (q.org != nil && !q.org.hasTrait(traitOrgFarmMachinery)) {
		return nil
	}
	machines := []struct{ kind, model string }{
		{"трактор", "Беларус 82.1"}, {"трактор", "Кировец К-744Р"}, {"комбайн зерноуборочный", "Вектор 410"},
		{"сеялка", "СЗП-3,6"}, {"погрузчик", "Амкодор 342"},
	}
	var out []siobroker.Record
	for range 1 + q.r.IntN(3) {
		m := machines[q.r.IntN(len(machines))]
		out = append(out, rec("agricultural_machine", join([]string{
			"machine_kind", m.kind,
			"model", m.model,
			"registration_number", q.digits(4) + " " + q.home().regionCode,
			"factory_number", q.digits(8),
			"build_year", strconv.Itoa(AsOf.Year() - q.r.IntN(20)),
			"registration_date", date(q.between(AsOf.AddDate(-12, 0, 0), AsOf)),
			"status", "на учете",
		}, q.ownerFields())...))
	}
	return out
}
