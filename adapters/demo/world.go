package demo

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/sio-pso/siobroker"
)

// AsOf is the date the demo world is observed on. It is fixed, not the wall clock, so that the
// same seed gives the same answers byte for byte on any day; every generated date lies before it.
var AsOf = time.Date(2026, time.January, 15, 0, 0, 0, 0, time.UTC)

// dateLayout is how every date is written in a record.
const dateLayout = "2006-01-02"

// Gender is a person's sex as the identity registry records it.
type Gender string

// The two values of Gender.
const (
	Male   Gender = "male"
	Female Gender = "female"
)

// CitizenshipKZ is the ISO 3166 alpha-3 code of Kazakhstan; every other value marks a foreign
// national living in or visiting the country.
const CitizenshipKZ = "KAZ"

// Address is a registered address.
type Address struct {
	Region, City, Street, House, Flat string
	regionCode                        string // two digits: starts plates and cadastral numbers
}

// String writes the address the way registry extracts print it.
func (a Address) String() string {
	s := a.Region + ", г. " + a.City + ", " + a.Street + ", д. " + a.House
	if strings.HasPrefix(a.Region, "г. ") {
		s = a.Region + ", " + a.Street + ", д. " + a.House
	}
	if a.Flat != "" {
		s += ", кв. " + a.Flat
	}
	return s
}

// Person is a generated individual. Its IIN encodes the birth date and gender as real IINs do.
type Person struct {
	IIN        string
	LastName   string
	FirstName  string
	MiddleName string // empty for foreign nationals, who have no patronymic on their documents
	BirthDate  time.Time
	Gender     Gender
	// Citizenship is CitizenshipKZ or another country's alpha-3 code.
	Citizenship     string
	CitizenshipName string
	BirthPlace      string
	Address         Address
	Phone           string // mobile, +7 7XX XXX XX XX
	// DocumentNo is the identity card number for citizens and the passport number for foreigners.
	DocumentNo     string
	DocumentIssued time.Time
	SpouseIIN      string
	FatherIIN      string
	MotherIIN      string
	EmployerBIN    string // empty when not employed
	Position       string
	HiredOn        time.Time

	monthlySalary int64 // tenge; only the pension contributions use it, as 10% of it
	traits        personTrait
	hostIIN       string // for foreign nationals: the citizen who invited and registered them
}

// FullName is "Last First Middle", the order Kazakh registries use.
func (p Person) FullName() string {
	return strings.TrimSpace(p.LastName + " " + p.FirstName + " " + p.MiddleName)
}

// Organisation is a generated legal entity. Its BIN encodes the registration year and month.
type Organisation struct {
	BIN          string
	Name         string // full name with the legal form, e.g. ТОО «Береке Строй»
	LegalForm    string
	RegisteredOn time.Time
	OKED         string // primary activity code
	Activity     string
	HeadIIN      string
	FounderIINs  []string
	Address      Address
	Phone        string
	Employees    int

	traits orgTrait
}

// Dataset is a generated world of people, organisations and their property. It is immutable after
// Generate, which is what makes the backends safe for concurrent use without locks.
type Dataset struct {
	seed    int64
	people  []Person
	orgs    []Organisation
	byIIN   map[string]int
	byBIN   map[string]int
	vehicle map[string][]vehicle // by owner IIN or BIN
	estate  map[string][]property
	land    map[string][]landPlot
	weapons map[string][]weapon
	// employees lists, per employer BIN, the IINs of the people working there.
	employees map[string][]string
}

type vehicle struct {
	plate, vin, certificate string
	model                   vehicleModel
	year                    int
	color                   string
	engineCC                int
	registered              time.Time
	wanted                  bool // in the criminal vehicles database (service 23) and Interpol's (86)
	imported                bool // cleared through customs by its owner (service 45)
	arrested                bool // under a registration ban (service 61)
}

type property struct {
	cadastral, kind string
	address         Address
	areaM2          float64
	rooms           int
	registered      time.Time
	basis           string
	arrested        bool // service 58
}

type landPlot struct {
	cadastral, purpose, right string
	address                   Address
	areaHa                    float64
	registered                time.Time
	encumbrance               string // service 67: "" when free
}

type weapon struct {
	kind, model, serial, caliber, permit string
	issued                               time.Time
	lost                                 bool // service 24
}

// People returns the generated individuals in generation order.
func (d *Dataset) People() []Person { return append([]Person(nil), d.people...) }

// Organisations returns the generated legal entities in generation order.
func (d *Dataset) Organisations() []Organisation {
	out := make([]Organisation, len(d.orgs))
	for i, o := range d.orgs {
		o.FounderIINs = append([]string(nil), o.FounderIINs...)
		out[i] = o
	}
	return out
}

// Person finds a person by IIN.
func (d *Dataset) Person(iin string) (Person, bool) {
	i, ok := d.byIIN[iin]
	if !ok {
		return Person{}, false
	}
	return d.people[i], true
}

// Organisation finds an organisation by BIN.
func (d *Dataset) Organisation(bin string) (Organisation, bool) {
	i, ok := d.byBIN[bin]
	if !ok {
		return Organisation{}, false
	}
	o := d.orgs[i]
	o.FounderIINs = append([]string(nil), o.FounderIINs...)
	return o, true
}

// Generate builds a world of the given number of people and organisations. The same arguments
// always give the same world. Rare facts (a wanted person, an oil company) are forced onto at
// least one subject when the world has anyone eligible, so that every service has something to
// show even in a small world.
func Generate(seed int64, people, orgs int) *Dataset {
	people, orgs = max(people, 0), max(orgs, 0)
	g := &generator{
		r: rand.New(rand.NewPCG(uint64(seed), 0x5105_d3e0_b0c1_ae47)),
		d: &Dataset{
			seed:      seed,
			byIIN:     make(map[string]int, people),
			byBIN:     make(map[string]int, orgs),
			vehicle:   map[string][]vehicle{},
			estate:    map[string][]property{},
			land:      map[string][]landPlot{},
			weapons:   map[string][]weapon{},
			employees: map[string][]string{},
		},
	}
	g.people(people)
	g.organisations(orgs)
	g.employment()
	g.personTraits()
	g.property()
	return g.d
}

type generator struct {
	r *rand.Rand
	d *Dataset
}

func (g *generator) pick(list []string) string { return list[g.r.IntN(len(list))] }

// between returns a random day in [from, to).
func (g *generator) between(from, to time.Time) time.Time {
	days := int(to.Sub(from).Hours() / 24)
	if days <= 0 {
		return from
	}
	return from.AddDate(0, 0, g.r.IntN(days))
}

func (g *generator) digits(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('0' + g.r.IntN(10))
	}
	return string(b)
}

func (g *generator) address(c city) Address {
	a := Address{Region: c.region, City: c.name, Street: g.pick(streets), House: fmt.Sprint(1 + g.r.IntN(150)), regionCode: c.code}
	if g.r.IntN(100) < 70 {
		a.Flat = fmt.Sprint(1 + g.r.IntN(240))
	}
	return a
}

func (g *generator) mobile() string {
	codes := []string{"701", "702", "705", "707", "708", "747", "771", "775", "777", "778"}
	d := g.digits(7)
	return "+7 " + g.pick(codes) + " " + d[:3] + " " + d[3:5] + " " + d[5:]
}

// newIIN makes a unique valid IIN: YYMMDD of birth, a digit for century and gender (3/4 for the
// 1900s, 5/6 for the 2000s, odd for men), a four-digit registration number and the check digit.
func (g *generator) newIIN(birth time.Time, gender Gender) string {
	century := 3
	if birth.Year() >= 2000 {
		century = 5
	}
	if gender == Female {
		century++
	}
	for {
		prefix := birth.Format("060102") + fmt.Sprint(century) + fmt.Sprintf("%04d", 1+g.r.IntN(9999))
		iin, ok := siobroker.CompleteIIN(prefix)
		if _, taken := g.d.byIIN[iin]; ok && !taken {
			return iin
		}
	}
}

// newBIN makes a unique valid BIN of a resident legal entity's head office: YYMM of registration,
// 4 (resident legal entity), 0 (head office, not a branch), a five-digit number and the check digit.
func (g *generator) newBIN(registered time.Time) string {
	for {
		prefix := registered.Format("0601") + "40" + fmt.Sprintf("%05d", g.r.IntN(100000))
		bin, ok := siobroker.CompleteIIN(prefix)
		if _, taken := g.d.byBIN[bin]; ok && !taken {
			return bin
		}
	}
}

func (g *generator) addPerson(p Person) int {
	g.d.byIIN[p.IIN] = len(g.d.people)
	g.d.people = append(g.d.people, p)
	return len(g.d.people) - 1
}

// people generates households: a head, perhaps a spouse and children sharing the father's surname
// and deriving their patronymic from his name, so that family links in the civil registry and the
// link analysis services agree with the names. One draw in ten is a foreign national living alone.
func (g *generator) people(n int) {
	for len(g.d.people) < n {
		if g.r.IntN(10) == 0 {
			g.foreigner()
			continue
		}
		home := cities[g.r.IntN(len(cities))]
		addr := g.address(home)
		surname := g.pick(kazakhSurnames)
		headGender := Male
		if g.r.IntN(4) == 0 {
			headGender = Female
		}
		head := g.citizen(surname, headGender, g.between(AsOf.AddDate(-72, 0, 0), AsOf.AddDate(-22, 0, 0)), addr, g.pick(kazakhMaleNames))
		hi := g.addPerson(head)
		father, mother := hi, -1
		if headGender == Female {
			father, mother = -1, hi
		}
		if len(g.d.people) < n && g.r.IntN(100) < 65 {
			spouseGender := Female
			if headGender == Female {
				spouseGender = Male
			}
			birth := head.BirthDate.AddDate(0, 0, g.r.IntN(3000)-1500)
			spouse := g.citizen(surname, spouseGender, birth, addr, g.pick(kazakhMaleNames))
			spouse.SpouseIIN = head.IIN
			si := g.addPerson(spouse)
			g.d.people[hi].SpouseIIN = spouse.IIN
			if spouseGender == Male {
				father = si
			} else {
				mother = si
			}
		}
		for range g.r.IntN(4) {
			if len(g.d.people) >= n {
				break
			}
			parentBirth := g.d.people[hi].BirthDate
			birth := parentBirth.AddDate(20+g.r.IntN(16), g.r.IntN(12), g.r.IntN(28))
			if !birth.Before(AsOf.AddDate(0, -1, 0)) {
				break
			}
			gender := Male
			if g.r.IntN(2) == 0 {
				gender = Female
			}
			fatherName := g.pick(kazakhMaleNames)
			if father >= 0 {
				fatherName = g.d.people[father].FirstName
			}
			child := g.citizen(surname, gender, birth, addr, fatherName)
			if father >= 0 {
				child.FatherIIN = g.d.people[father].IIN
			}
			if mother >= 0 {
				child.MotherIIN = g.d.people[mother].IIN
			}
			g.addPerson(child)
		}
	}
}

func (g *generator) citizen(surname string, gender Gender, birth time.Time, addr Address, fatherName string) Person {
	p := Person{
		LastName:        surname,
		BirthDate:       birth,
		Gender:          gender,
		Citizenship:     CitizenshipKZ,
		CitizenshipName: "Казахстан",
		BirthPlace:      "Казахстан, " + cities[g.r.IntN(len(cities))].region,
		Address:         addr,
		Phone:           g.mobile(),
	}
	// Roughly one in six uses the Kazakh patronymic form, which has become common since the 2010s.
	kazakhForm := g.r.IntN(6) == 0
	if gender == Male {
		p.FirstName = g.pick(kazakhMaleNames)
		p.MiddleName = fatherName + "ович"
		if kazakhForm {
			p.MiddleName = fatherName + "ұлы"
		}
	} else {
		p.LastName += "а"
		p.FirstName = g.pick(kazakhFemaleNames)
		p.MiddleName = fatherName + "овна"
		if kazakhForm {
			p.MiddleName = fatherName + "қызы"
		}
	}
	p.IIN = g.newIIN(birth, gender)
	if age(birth) >= 16 {
		// Identity cards are valid ten years, so the current one was issued within the last decade.
		p.DocumentNo = "0" + g.digits(8)
		p.DocumentIssued = g.between(maxTime(birth.AddDate(16, 0, 0), AsOf.AddDate(-10, 0, 0)), AsOf)
	}
	return p
}

func (g *generator) foreigner() {
	country := foreignCitizenships[g.r.IntN(len(foreignCitizenships))]
	gender := Male
	first := g.pick(foreignMaleNames)
	last := g.pick(foreignSurnames)
	if g.r.IntN(4) == 0 {
		gender, first, last = Female, g.pick(foreignFemaleNames), last+"а"
	}
	birth := g.between(AsOf.AddDate(-60, 0, 0), AsOf.AddDate(-19, 0, 0))
	p := Person{
		LastName: last, FirstName: first, BirthDate: birth, Gender: gender,
		Citizenship: country.code, CitizenshipName: country.name, BirthPlace: country.name,
		Address:        g.address(cities[g.r.IntN(len(cities))]),
		Phone:          g.mobile(),
		DocumentNo:     "FA" + g.digits(7),
		DocumentIssued: g.between(AsOf.AddDate(-8, 0, 0), AsOf.AddDate(0, -2, 0)),
	}
	p.IIN = g.newIIN(birth, gender)
	p.traits |= traitForeigner
	g.addPerson(p)
}

// organisations generates legal entities, each headed and founded by generated adult citizens.
// A few carry a special line of business (oil, alcohol, a state body...) that services 7-9, 47-49
// and 70-74 report on; these are dealt out first so that a small world still has one of each.
func (g *generator) organisations(n int) {
	adults := g.adultCitizens()
	specials := orgSpecials()
	for i := range n {
		registered := g.between(time.Date(1996, 1, 1, 0, 0, 0, 0, time.UTC), AsOf.AddDate(0, -3, 0))
		o := Organisation{
			RegisteredOn: registered,
			Address:      g.address(cities[g.r.IntN(len(cities))]),
			Phone:        "+7 " + g.digits(3) + " " + g.digits(3) + " " + g.digits(2) + " " + g.digits(2),
			Employees:    3 + g.r.IntN(250),
		}
		o.Address.Flat = ""
		a := activities[g.r.IntN(len(activities))]
		var special orgSpecial
		switch {
		case i < len(specials):
			special = specials[i]
		case g.r.IntN(5) == 0:
			special = specials[g.r.IntN(len(specials))]
		}
		if special.trait != 0 {
			o.traits |= special.trait
			a = special.activity
		}
		o.OKED, o.Activity = a.oked, a.name
		brand := g.pick(orgBrands)
		switch {
		case o.traits&traitStateBody != 0:
			o.LegalForm = "ГУ"
			o.Name = "ГУ «Управление предпринимательства и промышленности " + cityGenitive(o.Address) + "»"
		case g.r.IntN(6) == 0:
			o.LegalForm = "АО"
			o.Name = "АО «" + brand + "»"
			o.Employees += 300
		default:
			o.LegalForm = "ТОО"
			o.Name = "ТОО «" + brand + " " + fmt.Sprint(1+g.r.IntN(99)) + "»"
		}
		o.BIN = g.newBIN(registered)
		if len(adults) > 0 {
			o.HeadIIN = adults[g.r.IntN(len(adults))]
			if o.LegalForm == "ТОО" {
				for range 1 + g.r.IntN(3) {
					f := adults[g.r.IntN(len(adults))]
					if !slices.Contains(o.FounderIINs, f) {
						o.FounderIINs = append(o.FounderIINs, f)
					}
				}
			}
		}
		o.traits |= g.rollOrgTraits()
		g.d.byBIN[o.BIN] = len(g.d.orgs)
		g.d.orgs = append(g.d.orgs, o)
	}
	g.guaranteeOrgTraits()
}

func cityGenitive(a Address) string {
	return "города " + a.City
}

func (g *generator) adultCitizens() []string {
	var out []string
	for _, p := range g.d.people {
		if p.Citizenship == CitizenshipKZ && age(p.BirthDate) >= 21 {
			out = append(out, p.IIN)
		}
	}
	return out
}

// employment gives most working-age adults an employer. Civil servants work for state bodies;
// foreign nationals who came to work are hired by companies or households.
func (g *generator) employment() {
	var state, business []int
	for i, o := range g.d.orgs {
		if o.traits&traitStateBody != 0 {
			state = append(state, i)
		} else {
			business = append(business, i)
		}
	}
	var citizens []int
	for i, p := range g.d.people {
		if p.Citizenship == CitizenshipKZ {
			citizens = append(citizens, i)
		}
	}
	for i := range g.d.people {
		p := &g.d.people[i]
		a := age(p.BirthDate)
		if p.Citizenship != CitizenshipKZ {
			if len(citizens) > 0 {
				p.hostIIN = g.d.people[citizens[g.r.IntN(len(citizens))]].IIN
			}
		}
		if a < 18 || a >= 63 || g.r.IntN(100) >= 75 || len(g.d.orgs) == 0 {
			continue
		}
		var employer int
		switch {
		case len(state) > 0 && p.Citizenship == CitizenshipKZ && g.r.IntN(10) == 0:
			employer = state[g.r.IntN(len(state))]
			p.Position = g.pick(civilServicePositions)
			p.traits |= traitCivilServant
		case len(business) > 0:
			employer = business[g.r.IntN(len(business))]
			p.Position = g.pick(jobPositions)
		default:
			continue
		}
		o := g.d.orgs[employer]
		p.EmployerBIN = o.BIN
		p.HiredOn = g.between(maxTime(o.RegisteredOn, p.BirthDate.AddDate(18, 0, 0)), AsOf.AddDate(0, -1, 0))
		p.monthlySalary = int64(150+g.r.IntN(900)) * 1000
		g.d.employees[o.BIN] = append(g.d.employees[o.BIN], p.IIN)
	}
}

// property gives subjects vehicles, flats, land and hunting weapons, and marks a few of them as
// wanted, arrested or lost for the services that report on those.
func (g *generator) property() {
	owners := make([]string, 0, len(g.d.people)+len(g.d.orgs))
	for _, p := range g.d.people {
		if age(p.BirthDate) >= 18 {
			owners = append(owners, p.IIN)
		}
	}
	for _, o := range g.d.orgs {
		owners = append(owners, o.BIN)
	}
	for _, id := range owners {
		p, isPerson := g.d.Person(id)
		foreign := isPerson && p.Citizenship != CitizenshipKZ
		home := g.homeAddress(id)
		if !foreign && g.r.IntN(100) < 55 {
			for range 1 + g.r.IntN(2) {
				g.d.vehicle[id] = append(g.d.vehicle[id], g.newVehicle(home))
			}
		}
		if !foreign && g.r.IntN(100) < 60 {
			g.d.estate[id] = append(g.d.estate[id], g.newProperty(home, isPerson))
		}
		if !foreign && g.r.IntN(100) < 25 {
			g.d.land[id] = append(g.d.land[id], g.newLandPlot(home))
		}
		if isPerson && p.traits&traitWeaponOwner != 0 {
			g.d.weapons[id] = append(g.d.weapons[id], g.newWeapon(p))
		}
	}
	// Arrests follow debts: an enforcement officer arrests what a debtor owns. The owners slice,
	// not the maps, gives the order, so that the random draws happen in the same order every time.
	for _, id := range owners {
		if !g.isDebtor(id) {
			continue
		}
		for i := range g.d.vehicle[id] {
			g.d.vehicle[id][i].arrested = g.r.IntN(2) == 0
		}
		for i := range g.d.estate[id] {
			g.d.estate[id][i].arrested = g.r.IntN(2) == 0
		}
	}
	g.guaranteeAssetFlags(owners)
}

func (g *generator) homeAddress(id string) Address {
	if p, ok := g.d.Person(id); ok {
		return p.Address
	}
	o, _ := g.d.Organisation(id)
	return o.Address
}

func (g *generator) isDebtor(id string) bool {
	if p, ok := g.d.Person(id); ok {
		return p.traits&traitDebtor != 0
	}
	o, _ := g.d.Organisation(id)
	return o.traits&traitOrgDebtor != 0
}

const vinAlphabet = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789" // no I, O or Q, as ISO 3779 requires

func (g *generator) newVehicle(home Address) vehicle {
	m := vehicleModels[g.r.IntN(len(vehicleModels))]
	year := AsOf.Year() - g.r.IntN(18)
	vin := []byte(m.wmi)
	for len(vin) < 17 {
		vin = append(vin, vinAlphabet[g.r.IntN(len(vinAlphabet))])
	}
	const plateLetters = "ABCDEFHKMNOPTXYZ"
	plate := g.digits(3)
	for range 3 {
		plate += string(plateLetters[g.r.IntN(len(plateLetters))])
	}
	v := vehicle{
		plate:       plate + home.regionCode,
		vin:         string(vin),
		certificate: string(plateLetters[g.r.IntN(len(plateLetters))]) + string(plateLetters[g.r.IntN(len(plateLetters))]) + g.digits(8),
		model:       m,
		year:        year,
		color:       g.pick(vehicleColors),
		engineCC:    1400 + 100*g.r.IntN(30),
		registered:  g.between(maxTime(time.Date(year, 1, 1, 0, 0, 0, 0, time.UTC), AsOf.AddDate(-10, 0, 0)), AsOf.AddDate(0, 0, -7)),
		imported:    m.wmi[0] == 'J' || m.wmi[0] == 'T' || g.r.IntN(5) == 0,
	}
	v.wanted = g.r.IntN(40) == 0
	return v
}

func (g *generator) cadastral(home Address) string {
	return home.regionCode + "-" + g.digits(3) + "-" + g.digits(3) + "-" + g.digits(3)
}

func (g *generator) newProperty(home Address, person bool) property {
	p := property{
		cadastral:  g.cadastral(home),
		address:    home,
		registered: g.between(AsOf.AddDate(-20, 0, 0), AsOf.AddDate(0, 0, -10)),
		basis:      []string{"договор купли-продажи", "договор дарения", "свидетельство о праве на наследство", "акт ввода в эксплуатацию"}[g.r.IntN(4)],
	}
	switch {
	case !person:
		p.kind = "нежилое помещение"
		p.areaM2 = float64(80+g.r.IntN(2000)) + float64(g.r.IntN(10))/10
	case home.Flat != "":
		p.kind = "квартира"
		p.rooms = 1 + g.r.IntN(4)
		p.areaM2 = float64(28+p.rooms*18+g.r.IntN(15)) + float64(g.r.IntN(10))/10
	default:
		p.kind = "жилой дом"
		p.rooms = 3 + g.r.IntN(4)
		p.areaM2 = float64(90+g.r.IntN(200)) + float64(g.r.IntN(10))/10
	}
	return p
}

func (g *generator) newLandPlot(home Address) landPlot {
	l := landPlot{
		cadastral:  g.cadastral(home),
		address:    home,
		registered: g.between(AsOf.AddDate(-20, 0, 0), AsOf.AddDate(0, 0, -10)),
	}
	l.address.Flat = ""
	switch g.r.IntN(3) {
	case 0:
		l.purpose, l.right, l.areaHa = "для индивидуального жилищного строительства", "частная собственность", 0.08+float64(g.r.IntN(8))/100
	case 1:
		l.purpose, l.right, l.areaHa = "для ведения крестьянского хозяйства", "временное возмездное долгосрочное землепользование (49 лет)", float64(50+g.r.IntN(900))
	default:
		l.purpose, l.right, l.areaHa = "для строительства и обслуживания коммерческого объекта", "частная собственность", 0.1+float64(g.r.IntN(90))/100
	}
	if g.r.IntN(4) == 0 {
		l.encumbrance = []string{"залог", "арест", "сервитут"}[g.r.IntN(3)]
	}
	return l
}

func (g *generator) newWeapon(p Person) weapon {
	models := []struct{ kind, model, caliber string }{
		{"охотничье гладкоствольное", "МР-155", "12"},
		{"охотничье гладкоствольное", "ИЖ-27", "12"},
		{"охотничье с нарезным стволом", "Тигр", "7,62x54R"},
		{"гражданское самообороны", "Оса ПБ-4-2", "18x45"},
	}
	m := models[g.r.IntN(len(models))]
	return weapon{
		kind: m.kind, model: m.model, caliber: m.caliber,
		serial: fmt.Sprint(g.r.IntN(30)+1995) + g.digits(5),
		permit: "ОХ-" + g.digits(7),
		issued: g.between(maxTime(p.BirthDate.AddDate(21, 0, 0), AsOf.AddDate(-5, 0, 0)), AsOf.AddDate(0, -1, 0)),
		lost:   g.r.IntN(10) == 0,
	}
}

// guaranteeAssetFlags makes sure at least one vehicle is wanted, one imported, one arrested, one
// property arrested, one land plot encumbered and one weapon lost, when such assets exist at all.
func (g *generator) guaranteeAssetFlags(owners []string) {
	flagFirst := func(has func(id string) bool, set func(id string)) {
		for _, id := range owners {
			if has(id) {
				return
			}
		}
		start := g.r.IntN(len(owners) + 1)
		for i := range owners {
			id := owners[(start+i)%len(owners)]
			if len(g.d.vehicle[id])+len(g.d.estate[id])+len(g.d.land[id])+len(g.d.weapons[id]) > 0 {
				set(id)
				if has(id) {
					return
				}
			}
		}
	}
	flagFirst(func(id string) bool { return anyVehicle(g.d.vehicle[id], func(v vehicle) bool { return v.wanted }) },
		func(id string) {
			if vs := g.d.vehicle[id]; len(vs) > 0 {
				vs[0].wanted = true
			}
		})
	flagFirst(func(id string) bool { return anyVehicle(g.d.vehicle[id], func(v vehicle) bool { return v.imported }) },
		func(id string) {
			if vs := g.d.vehicle[id]; len(vs) > 0 {
				vs[0].imported = true
			}
		})
	flagFirst(func(id string) bool { return anyVehicle(g.d.vehicle[id], func(v vehicle) bool { return v.arrested }) },
		func(id string) {
			if vs := g.d.vehicle[id]; len(vs) > 0 && g.isDebtor(id) {
				vs[0].arrested = true
			}
		})
	flagFirst(func(id string) bool {
		for _, p := range g.d.estate[id] {
			if p.arrested {
				return true
			}
		}
		return false
	}, func(id string) {
		if ps := g.d.estate[id]; len(ps) > 0 && g.isDebtor(id) {
			ps[0].arrested = true
		}
	})
	flagFirst(func(id string) bool {
		for _, l := range g.d.land[id] {
			if l.encumbrance != "" {
				return true
			}
		}
		return false
	}, func(id string) {
		if ls := g.d.land[id]; len(ls) > 0 {
			ls[0].encumbrance = "арест"
		}
	})
	flagFirst(func(id string) bool {
		for _, w := range g.d.weapons[id] {
			if w.lost {
				return true
			}
		}
		return false
	}, func(id string) {
		if ws := g.d.weapons[id]; len(ws) > 0 {
			ws[0].lost = true
		}
	})
}

func anyVehicle(vs []vehicle, f func(vehicle) bool) bool {
	for _, v := range vs {
		if f(v) {
			return true
		}
	}
	return false
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// beforeAsOf moves a derived date that would fall after AsOf back to the day before it, so that
// the world never reports an event from its future.
func beforeAsOf(t time.Time) time.Time {
	if t.Before(AsOf) {
		return t
	}
	return AsOf.AddDate(0, 0, -1)
}

// age is the age in full years on AsOf.
func age(birth time.Time) int {
	years := AsOf.Year() - birth.Year()
	if AsOf.YearDay() < birth.YearDay() {
		years--
	}
	return years
}
