package demo

import (
	"strings"

	"github.com/sio-pso/siobroker"
)

// SubjectKind says whom a service can be asked about.
type SubjectKind int

// The subject kinds. A service asked about a kind it does not cover answers NO_DATA.
const (
	PersonSubject       SubjectKind = 1 << iota // asked by IIN
	OrganisationSubject                         // asked by BIN
	BothSubjects        = PersonSubject | OrganisationSubject
)

// String names the kinds covered, for logs and documentation.
func (k SubjectKind) String() string {
	var parts []string
	if k&PersonSubject != 0 {
		parts = append(parts, "person")
	}
	if k&OrganisationSubject != 0 {
		parts = append(parts, "organisation")
	}
	return strings.Join(parts, "+")
}

// Covers reports whether a service of this kind can answer about s.
func (k SubjectKind) Covers(s siobroker.Subject) bool {
	return (s.IIN != "" && k&PersonSubject != 0) || (s.BIN != "" && k&OrganisationSubject != 0)
}

// ServiceInfo describes one service of Appendix 2.
type ServiceInfo struct {
	No           int
	Name         string // the Russian short name of the database or service
	Source       string // the holder of the source database
	SubjectKinds SubjectKind
}

// catalogEntry is a service with the function that answers it. answer is called only for a
// subject found in the dataset and of a kind the service covers; nil or empty means NO_DATA.
type catalogEntry struct {
	ServiceInfo
	answer func(query) []siobroker.Record
}

// Shorter spellings of the subject kinds, to keep the table on one line per service.
const (
	byIIN    = PersonSubject
	byBIN    = OrganisationSubject
	byEither = BothSubjects
)

// catalog is Appendix 2 of the Rules, in its order: the index is the service number minus one.
// Names follow the Russian text; the Russian text omits rows 58–67, which are translated from the
// Kazakh one. Row 81 differs between the two texts (Russian: admission to and renunciation of
// citizenship; Kazakh: border-zone passes for foreigners); the Russian reading is used.
// Holders are the bodies that keep each database as of the 2024 edition.
var catalog = [siobroker.LastService]catalogEntry{
	{ServiceInfo{1, "ГБД «Физические лица»", "МЦРИАП", byIIN}, answerIndividual},
	{ServiceInfo{2, "ГБД «Юридические лица»", "МЮ", byEither}, answerLegalEntity},
	{ServiceInfo{3, "Регистр недвижимости", "МЮ", byEither}, answerRealEstate},
	{ServiceInfo{4, "Земельный участок", "МСХ", byEither}, answerLandPlots},
	{ServiceInfo{5, "Транспортные средства", "МВД", byEither}, answerVehicles},
	{ServiceInfo{6, "Зарегистрированное оружие", "МВД", byEither}, answerWeapons},
	{ServiceInfo{7, "Железнодорожный транспорт", "МТ", byBIN}, answerRailcars},
	{ServiceInfo{8, "Речные и маломерные суда", "МТ", byIIN}, answerSmallBoats},
	{ServiceInfo{9, "Морские суда", "МТ", byBIN}, answerSeaVessels},
	{ServiceInfo{10, "Сельхозтехника", "МСХ", byEither}, answerFarmMachinery},
	{ServiceInfo{11, "Пенсионные отчисления", "ГЦВП", byIIN}, answerPensionContributions},
	{ServiceInfo{12, "Инвалидность", "МТСЗН", byIIN}, answerDisability},
	{ServiceInfo{13, "Социальная помощь", "МТСЗН", byIIN}, answerSocialAid},
	{ServiceInfo{14, "Рынок труда", "МТСЗН", byIIN}, answerLabourMarket},
	{ServiceInfo{15, "Услуги, полученные в ЦОН", "ГК «Правительство для граждан»", byIIN}, answerPublicServices},
	{ServiceInfo{16, "Специальные учеты", "КПСиСУ ГП", byIIN}, answerSpecialRecords},
	{ServiceInfo{17, "Единая унифицированная статистическая система", "КПСиСУ ГП", byIIN}, answerStatisticalCards},
	{ServiceInfo{18, "Исполнительные производства", "МЮ", byEither}, answerEnforcement},
	{ServiceInfo{19, "Судебные органы", "ВС", byEither}, answerCourtCases},
	{ServiceInfo{20, "Судебные карточки", "КПСиСУ ГП", byIIN}, answerCourtCards},
	{ServiceInfo{21, "Нарушения правил дорожного движения", "МВД", byIIN}, answerTrafficViolations},
	{ServiceInfo{22, "Требования", "КПСиСУ ГП", byIIN}, answerRequirements},
	{ServiceInfo{23, "Криминальный автотранспорт", "МВД", byEither}, answerWantedVehicles},
	{ServiceInfo{24, "Криминальное оружие", "МВД", byIIN}, answerWantedWeapons},
	{ServiceInfo{25, "Учет дорожно-транспортных происшествий", "МВД", byIIN}, answerRoadAccidents},
	{ServiceInfo{26, "Запрос на госслужащего", "АДГС", byIIN}, answerCivilServantStatus},
	{ServiceInfo{27, "Фото из системы документирования населения", "МВД", byIIN}, answerPhoto},
	{ServiceInfo{28, "Форма 1 из системы документирования населения", "МВД", byIIN}, answerForm1},
	{ServiceInfo{29, "Водительское удостоверение", "МВД", byIIN}, answerDriverLicence},
	{ServiceInfo{30, "Е-Нотариат", "РНП", byEither}, answerNotarialActs},
	{ServiceInfo{31, "Единый учет обращений лиц", "КПСиСУ ГП", byEither}, answerAppeals},
	{ServiceInfo{32, "Записи актов гражданского состояния", "МЮ", byIIN}, answerCivilRegistry},
	{ServiceInfo{33, "Пересечение границы гражданами РК", "ПС КНБ", byIIN}, answerCitizenBorderCrossings},
	{ServiceInfo{34, "Пересечение границы иностранными гражданами", "ПС КНБ", byIIN}, answerForeignerBorderCrossings},
	{ServiceInfo{35, "Налогоплательщики", "КГД МФ", byEither}, answerTaxpayer},
	{ServiceInfo{36, "Налоговая задолженность", "КГД МФ", byEither}, answerTaxDebt},
	{ServiceInfo{37, "Встречные проверки", "КГД МФ", byBIN}, answerCounterChecks},
	{ServiceInfo{38, "Плательщики НДС", "КГД МФ", byBIN}, answerVATRegistration},
	{ServiceInfo{39, "Налоговая отчетность (СОНО)", "КГД МФ", byEither}, answerTaxReports},
	{ServiceInfo{40, "Контрагенты", "КГД МФ", byBIN}, answerCounterparties},
	{ServiceInfo{41, "Е-лицензирование", "МЦРИАП", byBIN}, answerLicences},
	{ServiceInfo{42, "Электронные государственные закупки", "МФ", byBIN}, answerProcurement},
	{ServiceInfo{43, "Участники внешнеэкономической деятельности", "КГД МФ", byBIN}, answerForeignTrade},
	{ServiceInfo{44, "Пассажирские таможенные декларации", "КГД МФ", byIIN}, answerPassengerDeclarations},
	{ServiceInfo{45, "Декларации на транспортное средство", "КГД МФ", byEither}, answerVehicleDeclarations},
	{ServiceInfo{46, "Иностранная рабочая сила", "МТСЗН", byEither}, answerForeignLabour},
	{ServiceInfo{47, "Монополисты", "АЗРК", byBIN}, answerMonopolist},
	{ServiceInfo{48, "Контракты на недропользование (углеводороды)", "МЭ", byBIN}, answerHydrocarbonContracts},
	{ServiceInfo{49, "Контракты на недропользование (ТПИ и подземные воды)", "МПС", byBIN}, answerSolidMineralContracts},
	{ServiceInfo{50, "Учет проверок", "КПСиСУ ГП", byBIN}, answerInspections},
	{ServiceInfo{51, "Поступления в бюджет", "КК МФ", byEither}, answerBudgetReceipts},
	{ServiceInfo{52, "Қазақстан темір жолы", "АО «НК «ҚТЖ»", byIIN}, answerRailTickets},
	{ServiceInfo{53, "Казахтелеком", "АО «Казахтелеком»", byEither}, answerLandline},
	{ServiceInfo{54, "Скрывающиеся от следствия/дознания", "МВД", byIIN}, answerWantedPerson},
	{ServiceInfo{55, "Без вести пропавшие", "МВД", byIIN}, answerMissingPerson},
	{ServiceInfo{56, "Должники и ответчики", "МЮ", byEither}, answerDebtor},
	{ServiceInfo{57, "Нарушения иностранными работниками", "МВД", byIIN}, answerForeignWorkerOffences},
	{ServiceInfo{58, "Арест недвижимости", "МЮ", byEither}, answerRealEstateArrests},
	{ServiceInfo{59, "Запрет на юридическое лицо (филиал, представительство)", "МЮ", byBIN}, answerRegistrationBan},
	{ServiceInfo{60, "Запрет на участие физического лица", "МЮ", byIIN}, answerParticipationBan},
	{ServiceInfo{61, "Арест транспортных средств", "МВД", byEither}, answerVehicleArrests},
	{ServiceInfo{62, "Контроль выдворения иностранцев", "МВД", byIIN}, answerExpulsion},
	{ServiceInfo{63, "Недобросовестные участники госзакупок", "МФ", byBIN}, answerUnreliableSupplier},
	{ServiceInfo{64, "Поиск адресов и контактных телефонов", "МЦРИАП", byIIN}, answerContacts},
	{ServiceInfo{65, "Сведения о государственных служащих", "АДГС", byIIN}, answerCivilServiceCareer},
	{ServiceInfo{66, "Прохождение техосмотра", "МВД", byEither}, answerTechnicalInspections},
	{ServiceInfo{67, "Обременение/снятие обременения земельного участка", "МСХ", byEither}, answerLandEncumbrances},
	{ServiceInfo{68, "Почтовые отправления", "АО «Казпочта»", byIIN}, answerParcels},
	{ServiceInfo{69, "Студенты и выпускники вузов", "МНВО", byIIN}, answerStudies},
	{ServiceInfo{70, "Декларация по производству и обороту этилового спирта и/или виноматериала", "КГД МФ", byBIN}, answerEthanolDeclarations},
	{ServiceInfo{71, "Декларация по производству и обороту алкогольной продукции", "КГД МФ", byBIN}, answerAlcoholProductionDeclarations},
	{ServiceInfo{72, "Декларация по обороту алкогольной продукции", "КГД МФ", byBIN}, answerAlcoholTradeDeclarations},
	{ServiceInfo{73, "Декларация по нефтепродуктам (версия 2)", "КГД МФ", byBIN}, answerFuelDeclarationsV2},
	{ServiceInfo{74, "Декларация по нефтепродуктам (версия 3)", "КГД МФ", byBIN}, answerFuelDeclarationsV3},
	{ServiceInfo{75, "Диспансерный учет (Д-учет)", "МЗ", byIIN}, answerDispensary},
	{ServiceInfo{76, "Регистрация временно пребывающих иностранцев", "МВД", byIIN}, answerTemporaryRegistration},
	{ServiceInfo{77, "Разрешения иностранцам на постоянное жительство", "МВД", byIIN}, answerResidencePermit},
	{ServiceInfo{78, "Разрешения иностранцам на трудовую деятельность у физических лиц", "МВД", byIIN}, answerHouseholdWorkPermit},
	{ServiceInfo{79, "Выезд из РК на постоянное место жительства", "МВД", byIIN}, answerEmigration},
	{ServiceInfo{80, "Приглашения на въезд в РК по частным делам", "МВД", byIIN}, answerInvitations},
	{ServiceInfo{81, "Прием в гражданство и выход из гражданства РК", "МВД", byIIN}, answerCitizenship},
	{ServiceInfo{82, "Взаимосвязи 1-го уровня", "КПСиСУ ГП", byEither}, answerLinksLevel1},
	{ServiceInfo{83, "Взаимосвязи 2-го уровня", "КПСиСУ ГП", byEither}, answerLinksLevel2},
	{ServiceInfo{84, "АИС «Қандас»", "МТСЗН", byIIN}, answerKandas},
	{ServiceInfo{85, "Осужденные (КУИС)", "МВД", byIIN}, answerConvict},
	{ServiceInfo{86, "Интерпол: криминальные транспортные средства", "НЦБ Интерпола МВД", byEither}, answerInterpolVehicles},
	{ServiceInfo{87, "Интерпол: разыскиваемые и без вести пропавшие лица", "НЦБ Интерпола МВД", byIIN}, answerInterpolPersons},
	{ServiceInfo{88, "Интерпол: похищенные и утерянные документы", "НЦБ Интерпола МВД", byIIN}, answerInterpolDocuments},
	{ServiceInfo{89, "Военнообязанные и призывники", "МО", byIIN}, answerMilitaryRegistration},
	{ServiceInfo{90, "Банковские счета и остатки на них", "АРРФР", byEither}, answerBankAccounts},
	{ServiceInfo{91, "Кредитная история (Первое кредитное бюро)", "ТОО «ПКБ»", byEither}, answerCreditHistory},
	{ServiceInfo{92, "База мобильных граждан", "МЦРИАП", byIIN}, answerMobileCitizen},
	{ServiceInfo{93, "Оформленные и забронированные авиабилеты", "ПС КНБ", byIIN}, answerAirTickets},
}

// Services lists the 93 services of Appendix 2 in order.
func Services() []ServiceInfo {
	out := make([]ServiceInfo, len(catalog))
	for i, e := range catalog {
		out[i] = e.ServiceInfo
	}
	return out
}
