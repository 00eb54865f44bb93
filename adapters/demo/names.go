package demo

// The small built-in vocabularies the generator draws from. Every name here is a common given
// name or a surname root; combinations are random, so no generated subject is a real person.

// Surnames are stored in their masculine form; the feminine form adds "а" (Ахметов → Ахметова),
// which holds for every entry because each ends in -ов or -ев.
var kazakhSurnames = []string{
	"Ахметов", "Жумабеков", "Касымов", "Оспанов", "Абдрахманов", "Исмаилов", "Султанов",
	"Тулегенов", "Кудайбергенов", "Есенов", "Байжанов", "Сарсенбаев", "Ермеков", "Калиев",
	"Муратов", "Нургалиев", "Жакупов", "Бектуров", "Омаров", "Садыков", "Искаков", "Утегенов",
	"Аманжолов", "Болатов", "Ержанов", "Кенжебаев", "Рахимов", "Сейтжанов", "Тлеубаев", "Дуйсенов",
}

// Male given names double as the root of patronymics, so each ends in a consonant that takes
// -ович/-овна and -ұлы/-қызы without spelling changes.
var kazakhMaleNames = []string{
	"Нурлан", "Ерлан", "Асхат", "Бауыржан", "Даулет", "Ержан", "Канат", "Марат", "Серик", "Талгат",
	"Арман", "Руслан", "Азамат", "Ерболат", "Жандос", "Нуржан", "Бекзат", "Алмас", "Дамир",
	"Тимур", "Айдос", "Санжар", "Мирас", "Ернар", "Дастан",
}

var kazakhFemaleNames = []string{
	"Айгерим", "Динара", "Гульнара", "Жанар", "Салтанат", "Асель", "Айжан", "Мадина", "Алия",
	"Сауле", "Гульмира", "Камила", "Аружан", "Дана", "Жансая", "Меруерт", "Томирис", "Айнур",
	"Зарина", "Балжан",
}

// Foreign nationals (migrants, workers, visitors) get names from their own short lists.
var foreignSurnames = []string{"Иванов", "Петров", "Смирнов", "Юсупов", "Турсунов", "Ахмедов", "Абдуллаев", "Носиров", "Мамытов", "Исаков"}
var foreignMaleNames = []string{"Сергей", "Алексей", "Рустам", "Шерзод", "Бахтиёр", "Олег", "Жасур", "Улан"}
var foreignFemaleNames = []string{"Ольга", "Елена", "Нигора", "Дилноза", "Айпери", "Наталья"}

// foreignCitizenship pairs the country code used on identity documents with its Russian name.
var foreignCitizenships = []struct{ code, name string }{
	{"UZB", "Узбекистан"}, {"RUS", "Российская Федерация"}, {"KGZ", "Кыргызстан"},
	{"CHN", "Китай"}, {"TUR", "Турция"}, {"TJK", "Таджикистан"},
}

// city is a settlement with its region and the two-digit region code that vehicle plates and
// cadastral numbers start with.
type city struct {
	name, region, code string
}

var cities = []city{
	{"Астана", "г. Астана", "01"},
	{"Алматы", "г. Алматы", "02"},
	{"Кокшетау", "Акмолинская область", "03"},
	{"Актобе", "Актюбинская область", "04"},
	{"Конаев", "Алматинская область", "05"},
	{"Атырау", "Атырауская область", "06"},
	{"Уральск", "Западно-Казахстанская область", "07"},
	{"Тараз", "Жамбылская область", "08"},
	{"Караганда", "Карагандинская область", "09"},
	{"Костанай", "Костанайская область", "10"},
	{"Кызылорда", "Кызылординская область", "11"},
	{"Актау", "Мангистауская область", "12"},
	{"Туркестан", "Туркестанская область", "13"},
	{"Павлодар", "Павлодарская область", "14"},
	{"Петропавловск", "Северо-Казахстанская область", "15"},
	{"Усть-Каменогорск", "Восточно-Казахстанская область", "16"},
	{"Шымкент", "г. Шымкент", "17"},
	{"Семей", "область Абай", "18"},
	{"Талдыкорган", "область Жетісу", "19"},
	{"Жезказган", "область Ұлытау", "20"},
}

var streets = []string{
	"ул. Абая", "пр. Кабанбай батыра", "ул. Кенесары", "пр. Достык", "ул. Жибек жолы",
	"ул. Сатпаева", "пр. Тауелсиздик", "ул. Байтурсынова", "пр. Республики", "ул. Толе би",
	"ул. Казыбек би", "ул. Айтеке би", "ул. Ауэзова", "ул. Сейфуллина", "ул. Бокейхана",
	"пр. Мангилик Ел", "ул. Биржан сал", "ул. Жамбыла", "мкр. Самал", "ул. Туран",
}

// Organisation names are built from a legal form, a made-up brand and an activity.
var orgBrands = []string{
	"Алтын Дала", "Сункар", "Береке", "Нур Инвест", "Ак Жол", "Каспий Сервис", "Тениз",
	"Жулдыз", "Арай", "Самрук Строй", "Степной Ветер", "Байтерек Логистик", "Кокжиек", "Ертис Агро",
	"Шапагат", "Алатау Трейд", "Умай", "Тумар", "Сарыарка Металл", "Жетысу Фуд",
}

// activity is a primary economic activity (ОКЭД) with its code.
type activity struct{ oked, name string }

var activities = []activity{
	{"41201", "Строительство жилых зданий"},
	{"46900", "Неспециализированная оптовая торговля"},
	{"47111", "Розничная торговля в неспециализированных магазинах"},
	{"49410", "Деятельность автомобильного грузового транспорта"},
	{"62010", "Разработка программного обеспечения"},
	{"01110", "Выращивание зерновых и зернобобовых культур"},
	{"56101", "Деятельность ресторанов"},
	{"68201", "Аренда и управление собственной недвижимостью"},
	{"71121", "Инженерно-техническое проектирование"},
	{"80100", "Деятельность частных охранных служб"},
}

// Activities forced by an organisation's special trait, so that an oil-declaration filer is
// actually in the oil business.
var (
	activityHydrocarbons  = activity{"06100", "Добыча сырой нефти и попутного газа"}
	activitySolidMinerals = activity{"07291", "Добыча руд цветных металлов"}
	activityEthanol       = activity{"11010", "Перегонка, очистка и смешивание спиртов"}
	activityAlcohol       = activity{"11020", "Производство виноградного вина"}
	activityAlcoholTrade  = activity{"46341", "Оптовая торговля алкогольными напитками"}
	activityFuel          = activity{"46711", "Оптовая торговля нефтепродуктами"}
	activityGrid          = activity{"35120", "Передача электроэнергии"}
	activityStateBody     = activity{"84111", "Деятельность органов государственного управления"}
)

var jobPositions = []string{
	"менеджер", "главный специалист", "бухгалтер", "инженер", "водитель", "продавец-консультант",
	"юрист", "экономист", "оператор", "начальник отдела", "программист", "мастер участка",
}

var civilServicePositions = []string{
	"главный специалист", "ведущий специалист", "руководитель управления", "заместитель руководителя отдела", "эксперт",
}

// vehicleModel is a make and model with the world manufacturer identifier that starts its VIN.
type vehicleModel struct{ make, model, wmi, body string }

var vehicleModels = []vehicleModel{
	{"Toyota", "Camry", "JTN", "седан"},
	{"Toyota", "Land Cruiser Prado", "JTE", "универсал"},
	{"Hyundai", "Accent", "Y6L", "седан"},
	{"Hyundai", "Tucson", "Y6L", "универсал"},
	{"Kia", "Rio", "XWE", "седан"},
	{"Kia", "Sportage", "XWE", "универсал"},
	{"Lada", "Granta", "XTA", "седан"},
	{"Lada", "Vesta", "XTA", "седан"},
	{"Chevrolet", "Cobalt", "XWB", "седан"},
	{"Chevrolet", "Nexia", "XWB", "седан"},
	{"Volkswagen", "Polo", "XW8", "седан"},
	{"Skoda", "Octavia", "TMB", "лифтбек"},
	{"Nissan", "X-Trail", "JN1", "универсал"},
	{"Haval", "Jolion", "LGW", "универсал"},
	{"Chery", "Tiggo 7 Pro", "LVV", "универсал"},
	{"JAC", "S3", "LJ1", "универсал"},
}

var vehicleColors = []string{"белый", "черный", "серый", "серебристый", "синий", "красный", "бежевый"}

// bank is a second-tier bank: BIC, the three-digit code that follows the check digits in a
// Kazakh IBAN, and its name.
type bank struct{ bic, ibanCode, name string }

var banks = []bank{
	{"HSBKKZKX", "601", "АО «Народный Банк Казахстана»"},
	{"CASPKZKA", "722", "АО «Kaspi Bank»"},
	{"KCJBKZKX", "856", "АО «Банк ЦентрКредит»"},
	{"HCSKKZKA", "125", "АО «Отбасы банк»"},
	{"IRTYKZKA", "965", "АО «ForteBank»"},
	{"BKCHKZKA", "907", "АО ДБ «Банк Китая в Казахстане»"},
}

var universities = []string{
	"Евразийский национальный университет им. Л.Н. Гумилева",
	"Казахский национальный университет им. аль-Фараби",
	"Карагандинский университет им. Е.А. Букетова",
	"Южно-Казахстанский университет им. М. Ауэзова",
	"Казахский агротехнический исследовательский университет им. С. Сейфуллина",
}

var specialities = []string{"Юриспруденция", "Информационные системы", "Учет и аудит", "Строительство", "Педагогика", "Нефтегазовое дело"}

var airports = []struct{ iata, city string }{
	{"NQZ", "Астана"}, {"ALA", "Алматы"}, {"CIT", "Шымкент"}, {"GUW", "Атырау"}, {"SCO", "Актау"},
	{"IST", "Стамбул"}, {"DXB", "Дубай"}, {"SVO", "Москва"}, {"TAS", "Ташкент"}, {"PEK", "Пекин"},
}

var borderCheckpoints = []string{
	"МАПП «Нур Жолы»", "МАПП «Жибек жолы»", "АПП «Аэропорт Астана»",
	"АПП «Аэропорт Алматы»", "МАПП «Кордай»", "ЖДПП «Петропавловск»", "МАПП «Жаңажол»",
}

var countries = []string{"Российская Федерация", "Узбекистан", "Кыргызстан", "Турция", "ОАЭ", "Китай", "Грузия"}
