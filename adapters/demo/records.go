package demo

import (
	"fmt"
	"math/big"
	"time"

	"github.com/sio-pso/siobroker"
)

// rec builds a record from alternating field names and values. Empty values are left out, as a
// source system leaves out a column it has nothing for.
func rec(typ string, nameValues ...string) siobroker.Record {
	if len(nameValues)%2 != 0 {
		panic("demo: rec needs name/value pairs for " + typ)
	}
	r := siobroker.Record{Type: typ, Fields: make([]siobroker.Field, 0, len(nameValues)/2)}
	for i := 0; i < len(nameValues); i += 2 {
		if nameValues[i+1] != "" {
			r.Fields = append(r.Fields, siobroker.Field{Name: nameValues[i], Value: nameValues[i+1]})
		}
	}
	return r
}

func date(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format(dateLayout)
}

// timestamp writes a moment in Astana time, for events that registries record to the minute.
func timestamp(t time.Time) string {
	return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), 0, 0, siobroker.Astana).Format(time.RFC3339)
}

// money writes an amount in tenge with two decimals, the way payment systems print it.
func money(tiyn int64) string { return fmt.Sprintf("%d.%02d", tiyn/100, tiyn%100) }

// tenge converts whole tenge to tiyn for money.
func tenge(t int64) int64 { return t * 100 }

// moment is a random minute on a random day in [from, to).
func (g *generator) moment(from, to time.Time) time.Time {
	d := g.between(from, to)
	return d.Add(time.Duration(6*60+g.r.IntN(16*60)) * time.Minute)
}

// official is a generated officer's name in the "Surname I.O." form used in signatures.
func (g *generator) official() string {
	s := g.pick(kazakhSurnames)
	if g.r.IntN(2) == 0 {
		s += "а"
	}
	return s + " " + string([]rune(g.pick(kazakhMaleNames))[:1]) + "." + string([]rune(g.pick(kazakhMaleNames))[:1]) + "."
}

// nameOf returns the registered name behind an IIN or BIN, so that a counterpart in one service
// is named as in the registries.
func (d *Dataset) nameOf(id string) string {
	if p, ok := d.Person(id); ok {
		return p.FullName()
	}
	if o, ok := d.Organisation(id); ok {
		return o.Name
	}
	return ""
}

// ownerFields are the owner columns of a property register: owner_iin or owner_bin, and the name.
func (q query) ownerFields() []string {
	if q.person != nil {
		return []string{"owner_iin", q.person.IIN, "owner_name", q.person.FullName()}
	}
	return []string{"owner_bin", q.org.BIN, "owner_name", q.org.Name}
}

// subjectFields names the subject the same way for services that are not about property.
func (q query) subjectFields() []string {
	if q.person != nil {
		return []string{"iin", q.person.IIN, "full_name", q.person.FullName()}
	}
	return []string{"bin", q.org.BIN, "name", q.org.Name}
}

func join(parts ...[]string) []string {
	var out []string
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func (q query) home() Address {
	if q.person != nil {
		return q.person.Address
	}
	return q.org.Address
}

// taxOffice is the state revenue office of the subject's home city.
func taxOffice(a Address) string { return "УГД по г. " + a.City }

// policeDepartment is the city police department that registers and searches in a city.
func policeDepartment(a Address) string { return "УП г. " + a.City + " ДП " + a.Region }

func genderName(g Gender) string {
	if g == Female {
		return "женский"
	}
	return "мужской"
}

func (p Person) hasTrait(t personTrait) bool    { return p.traits&t != 0 }
func (o Organisation) hasTrait(t orgTrait) bool { return o.traits&t != 0 }

// monthsBack lists the first days of the n months before AsOf's month, oldest first.
func monthsBack(n int) []time.Time {
	first := time.Date(AsOf.Year(), AsOf.Month(), 1, 0, 0, 0, 0, time.UTC)
	out := make([]time.Time, 0, n)
	for i := n; i >= 1; i-- {
		out = append(out, first.AddDate(0, -i, 0))
	}
	return out
}

// iban makes a valid Kazakh IBAN: KZ, two check digits (ISO 13616 mod 97), the bank's three-digit
// code and a thirteen-digit account number.
func (g *generator) iban(b bank) string {
	bban := b.ibanCode + g.digits(13)
	// Move the country code and "00" to the end, letters to numbers (K=20, Z=35), mod 97.
	n, _ := new(big.Int).SetString(bban+"2035"+"00", 10)
	check := 98 - new(big.Int).Mod(n, big.NewInt(97)).Int64()
	return fmt.Sprintf("KZ%02d%s", check, bban)
}

// postalTracking makes a UPU S10 item number with its check digit, e.g. RR123456789KZ.
func (g *generator) postalTracking(service string) string {
	digits := g.digits(8)
	weights := []int{8, 6, 4, 2, 3, 5, 9, 7}
	sum := 0
	for i, w := range weights {
		sum += int(digits[i]-'0') * w
	}
	check := 11 - sum%11
	switch check {
	case 10:
		check = 0
	case 11:
		check = 5
	}
	return fmt.Sprintf("%s%s%dKZ", service, digits, check)
}

// imoNumber makes an IMO ship number with its check digit.
func (g *generator) imoNumber() string {
	// The first digit is 9. The draw the first version took for it is kept, so that a seed still
	// generates the world it always did (the README's examples name its people).
	g.r.Uint64()
	digits := "9" + g.digits(5)
	sum := 0
	for i := range 6 {
		sum += int(digits[i]-'0') * (7 - i)
	}
	return "IMO " + digits + fmt.Sprint(sum%10)
}

// erdrNumber makes a number of the Unified Register of Pre-trial Investigations: two digits of
// the year, the body's code and a sequence.
func (g *generator) erdrNumber(year int) string {
	return fmt.Sprintf("%02d%s%s", year%100, g.digits(7), g.digits(6))
}
