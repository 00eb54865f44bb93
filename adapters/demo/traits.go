package demo

// Traits are the facts about a subject that several services must agree on: a convicted person
// appears in the special records (16), the court cards (20), the requirements (22) and the
// penitentiary register (85). They are dealt out once, in Generate, so every service reads the
// same answer.

type personTrait uint64

const (
	traitForeigner personTrait = 1 << iota
	traitCivilServant
	traitConvicted
	traitWanted
	traitMissing
	traitDisabled
	traitSocialAid
	traitJobSeeker
	traitWeaponOwner
	traitDebtor
	traitDriver
	traitTraveller
	traitDispensary
	traitStudent
	traitKandas
	traitEmigrating
	traitLostDocument
	traitNotaryClient
	traitAppellant
	traitPublicServices
	traitLandline
	traitParcels
	traitBanked
	traitBorrower
	traitMobileCitizen
	traitRoadAccident
	traitTrafficOffender
	traitSmallBoat
	traitFarmMachinery
	traitDeported
	traitPermanentResident
	traitHouseholdWorker
	traitForeignWorker
	traitForeignWorkerOffence
	traitCustomsDeclarant
)

// personTraitRule says who may carry a trait and how often (in percent of those eligible).
type personTraitRule struct {
	trait    personTrait
	percent  int
	eligible func(p *Person) bool
}

func adult(p *Person) bool        { return age(p.BirthDate) >= 18 }
func citizenAdult(p *Person) bool { return adult(p) && p.Citizenship == CitizenshipKZ }
func foreign(p *Person) bool      { return p.Citizenship != CitizenshipKZ }
func anyone(*Person) bool         { return true }

var personTraitRules = []personTraitRule{
	{traitConvicted, 8, func(p *Person) bool { return citizenAdult(p) && p.traits&traitCivilServant == 0 }},
	{traitWanted, 2, citizenAdult},
	{traitMissing, 2, anyone},
	{traitDisabled, 5, anyone},
	{traitSocialAid, 10, citizenAdult},
	{traitJobSeeker, 30, func(p *Person) bool { return citizenAdult(p) && p.EmployerBIN == "" && age(p.BirthDate) < 63 }},
	{traitWeaponOwner, 6, func(p *Person) bool { return citizenAdult(p) && age(p.BirthDate) >= 21 }},
	{traitDebtor, 12, adult},
	{traitDriver, 65, citizenAdult},
	{traitTraveller, 40, adult},
	{traitDispensary, 7, anyone},
	{traitStudent, 55, func(p *Person) bool {
		a := age(p.BirthDate)
		return p.Citizenship == CitizenshipKZ && a >= 17 && a <= 35
	}},
	{traitKandas, 4, citizenAdult},
	{traitEmigrating, 2, citizenAdult},
	{traitLostDocument, 4, func(p *Person) bool { return p.DocumentNo != "" }},
	{traitNotaryClient, 35, adult},
	{traitAppellant, 15, adult},
	{traitPublicServices, 75, anyone},
	{traitLandline, 35, citizenAdult},
	{traitParcels, 25, adult},
	{traitBanked, 90, adult},
	{traitBorrower, 55, citizenAdult},
	{traitMobileCitizen, 85, adult},
	{traitRoadAccident, 12, func(p *Person) bool { return p.traits&traitDriver != 0 }},
	{traitTrafficOffender, 45, func(p *Person) bool { return p.traits&traitDriver != 0 }},
	{traitSmallBoat, 4, citizenAdult},
	{traitFarmMachinery, 5, citizenAdult},
	{traitDeported, 25, foreign},
	{traitPermanentResident, 30, func(p *Person) bool { return foreign(p) && p.traits&traitDeported == 0 }},
	{traitHouseholdWorker, 25, func(p *Person) bool { return foreign(p) && p.EmployerBIN == "" }},
	{traitForeignWorker, 100, func(p *Person) bool { return foreign(p) && p.EmployerBIN != "" }},
	{traitForeignWorkerOffence, 30, func(p *Person) bool { return foreign(p) && p.traits&(traitForeignWorker|traitHouseholdWorker) != 0 }},
	{traitCustomsDeclarant, 30, func(p *Person) bool { return p.traits&traitTraveller != 0 }},
}

// personTraits deals the traits out in rule order (later rules may depend on earlier ones) and
// then gives each trait to one eligible person if chance gave it to nobody.
func (g *generator) personTraits() {
	for _, rule := range personTraitRules {
		holders, eligible := 0, []int(nil)
		for i := range g.d.people {
			p := &g.d.people[i]
			if !rule.eligible(p) {
				continue
			}
			eligible = append(eligible, i)
			if g.r.IntN(100) < rule.percent {
				p.traits |= rule.trait
				holders++
			}
		}
		if holders == 0 && len(eligible) > 0 {
			g.d.people[eligible[g.r.IntN(len(eligible))]].traits |= rule.trait
		}
	}
}

type orgTrait uint64

const (
	// Special lines of business: an organisation has at most one.
	traitStateBody orgTrait = 1 << iota
	traitHydrocarbons
	traitSolidMinerals
	traitEthanol
	traitAlcoholProducer
	traitAlcoholTrader
	traitFuelTrader
	traitMonopolist

	// Facts any business may carry.
	traitVATPayer
	traitTaxDebt
	traitCounterCheck
	traitLicensed
	traitProcurement
	traitForeignTrade
	traitInspected
	traitUnreliableSupplier
	traitRegistrationBan
	traitOrgDebtor
	traitOrgLandline
	traitRailcars
	traitSeaVessels
	traitOrgFarmMachinery
	traitWeaponsHolder
)

type orgSpecial struct {
	trait    orgTrait
	activity activity
}

// orgSpecials lists the special lines of business in the order they are dealt to the first
// organisations.
func orgSpecials() []orgSpecial {
	return []orgSpecial{
		{traitStateBody, activityStateBody},
		{traitHydrocarbons, activityHydrocarbons},
		{traitSolidMinerals, activitySolidMinerals},
		{traitEthanol, activityEthanol},
		{traitAlcoholProducer, activityAlcohol},
		{traitAlcoholTrader, activityAlcoholTrade},
		{traitFuelTrader, activityFuel},
		{traitMonopolist, activityGrid},
	}
}

// orgTraitRules are the per-organisation chances, in percent, of the non-special facts. State
// bodies carry none of them (guaranteeOrgTraits strips them): they are the customers in
// procurement and the inspectors, not the inspected.
var orgTraitRules = []struct {
	trait   orgTrait
	percent int
}{
	{traitVATPayer, 60},
	{traitTaxDebt, 20},
	{traitCounterCheck, 15},
	{traitLicensed, 40},
	{traitProcurement, 30},
	{traitForeignTrade, 25},
	{traitInspected, 30},
	{traitUnreliableSupplier, 5},
	{traitRegistrationBan, 5},
	{traitOrgDebtor, 12},
	{traitOrgLandline, 60},
	{traitRailcars, 8},
	{traitSeaVessels, 4},
	{traitOrgFarmMachinery, 10},
	{traitWeaponsHolder, 6},
}

func (g *generator) rollOrgTraits() orgTrait {
	var t orgTrait
	for _, rule := range orgTraitRules {
		if g.r.IntN(100) < rule.percent {
			t |= rule.trait
		}
	}
	return t
}

// guaranteeOrgTraits gives each non-special fact to one business if chance gave it to none, and
// strips them all from state bodies.
func (g *generator) guaranteeOrgTraits() {
	var business []int
	for i := range g.d.orgs {
		o := &g.d.orgs[i]
		if o.traits&traitStateBody != 0 {
			o.traits = traitStateBody
			continue
		}
		business = append(business, i)
	}
	if len(business) == 0 {
		return
	}
	for _, rule := range orgTraitRules {
		found := false
		for _, i := range business {
			if g.d.orgs[i].traits&rule.trait != 0 {
				found = true
				break
			}
		}
		if !found {
			g.d.orgs[business[g.r.IntN(len(business))]].traits |= rule.trait
		}
	}
}
